package sdktest_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/nemoclave/nemoclave/sdk/dataproc"
	"github.com/nemoclave/nemoclave/sdk/memory"
	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/schema"
	"github.com/nemoclave/nemoclave/sdk/sdktest"
	"github.com/nemoclave/nemoclave/sdk/status"
)

func TestReferencePluginsPass(t *testing.T) {
	t.Parallel()
	for name, run := range map[string]func(t *testing.T){
		"embeddings": func(t *testing.T) {
			sdktest.Common(t, &hashEmbedder{})
			sdktest.Embeddings(t, &hashEmbedder{})
		},
		"embeddings with config": func(t *testing.T) {
			sdktest.Common(t, &configured{}, sdktest.WithConfig(`{"prefix":"x"}`))
			sdktest.Embeddings(t, &configured{}, sdktest.WithEmbedInputs("a b", "c d"))
		},
		"llm": func(t *testing.T) {
			sdktest.Common(t, &echoLLM{})
			sdktest.LLM(t, &echoLLM{}, sdktest.WithDeterministic(), sdktest.WithModel("echo-large"))
		},
		"retrieval": func(t *testing.T) {
			sdktest.Common(t, &memRetrieval{})
			sdktest.Retrieval(t, &memRetrieval{}, sdktest.WithTextQueries(), sdktest.WithDimensions(hashDims))
		},
		"retrieval vectors only": func(t *testing.T) {
			sdktest.Retrieval(t, &memRetrieval{}, sdktest.WithDimensions(3))
		},
		"memory": func(t *testing.T) {
			sdktest.Common(t, &memMemory{})
			sdktest.Memory(t, &memMemory{})
		},
		"memory wired to embeddings": func(t *testing.T) {
			opt := sdktest.WithWiring("embeddings", plugin.KindEmbeddings, &hashEmbedder{}, "")
			sdktest.Common(t, &wiredMemory{}, opt)
			sdktest.Memory(t, &wiredMemory{}, opt, sdktest.WithStateDir(t.TempDir()))
		},
		"tools": func(t *testing.T) {
			sdktest.Common(t, &wordTools{})
			sdktest.Tools(t, &wordTools{}, sdktest.WithToolSample("wordcount", `{"text":"one two three"}`))
		},
		"tools watcher": func(t *testing.T) {
			sdktest.Tools(t, &watchingTools{}, sdktest.WithToolSample("wordcount", `{"text":""}`))
		},
		"dataproc defaults": func(t *testing.T) {
			sdktest.Common(t, &textProc{})
			sdktest.DataProc(t, &textProc{})
		},
		"dataproc samples": func(t *testing.T) {
			doc := dataproc.Document{Name: "notes.md", MIMEType: "text/markdown", Data: []byte("# a\n\nb\n\nc")}
			sdktest.DataProc(t, &textProc{},
				sdktest.WithDocument(dataproc.OpChunk, doc, `{"trim":true}`),
				sdktest.WithDocument(dataproc.OpExtractText, doc, ""))
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			run(t)
		})
	}
}

// wiredMemory is memMemory that insists on reaching a wired embeddings
// plugin through the host, proving WithWiring works end to end.
type wiredMemory struct {
	memMemory
	host plugin.Host
}

func (*wiredMemory) ConfigSchema() *schema.Schema {
	return &schema.Schema{Block: schema.Block{Attributes: []schema.Attribute{
		{Name: "embeddings", PluginKind: string(plugin.KindEmbeddings), Required: true},
	}}}
}

func (m *wiredMemory) Configure(_ context.Context, cfg plugin.Config, h plugin.Host) error {
	if len(cfg.Wirings) != 1 || cfg.Wirings[0].Attribute != "embeddings" || cfg.StateDir == "" {
		return status.Errorf(status.InvalidArgument, "want one embeddings wiring and a state dir, got %+v", cfg)
	}
	m.host = h
	return nil
}

func (m *wiredMemory) Remember(ctx context.Context, sc memory.Scope, text string, md map[string]any) (memory.Memory, error) {
	e, err := m.host.Embeddings("embeddings")
	if err != nil {
		return memory.Memory{}, err
	}
	if d, err := e.Dimensions(ctx, ""); err != nil || d != hashDims {
		return memory.Memory{}, status.Errorf(status.Internal, "wired embedder: %d dims, %v", d, err)
	}
	return m.memMemory.Remember(ctx, sc, text, md)
}

// brokenCases name a defect of a reference plugin and a phrase the suite
// must report for it. Each runs in a helper process (this test binary
// re-executed) because a suite failing is the expected outcome.
var brokenCases = map[string]struct {
	run  func(t *testing.T)
	want string
}{
	"embeddings reversed":   {func(t *testing.T) { sdktest.Embeddings(t, &hashEmbedder{broken: "reversed"}) }, "out of order"},
	"embeddings noisy":      {func(t *testing.T) { sdktest.Embeddings(t, &hashEmbedder{broken: "noisy"}) }, "not deterministic"},
	"llm no finish":         {func(t *testing.T) { sdktest.LLM(t, &echoLLM{broken: "no-finish"}) }, "finish reason \"\""},
	"llm double finish":     {func(t *testing.T) { sdktest.LLM(t, &echoLLM{broken: "double-finish"}) }, "2 chunks carry a finish reason"},
	"retrieval filters":     {func(t *testing.T) { sdktest.Retrieval(t, &memRetrieval{broken: "ignores-filters"}) }, "MatchFilters selects"},
	"memory leaks users":    {func(t *testing.T) { sdktest.Memory(t, &memMemory{broken: "leaks-users"}) }, "another user recalled alice's"},
	"tools array schema":    {func(t *testing.T) { sdktest.Tools(t, &wordTools{broken: "array-schema"}) }, `"type" must be "object"`},
	"tools unknown ok":      {func(t *testing.T) { sdktest.Tools(t, &wordTools{broken: "accepts-anything"}) }, "want a status.NotFound"},
	"tools sample fails":    {func(t *testing.T) { sdktest.Tools(t, &wordTools{}, sdktest.WithToolSample("wordcount", `{}`)) }, "reported a tool error"},
	"dataproc offsets":      {func(t *testing.T) { sdktest.DataProc(t, &textProc{broken: "offsets"}) }, "is not Text["},
	"common bad default":    {func(t *testing.T) { sdktest.Common(t, &configured{badDefault: true}) }, "rejected the schema defaults"},
	"common missing wiring": {func(t *testing.T) { sdktest.Memory(t, &wiredMemory{}) }, "configure the plugin"},
	// The same checks against a binary (this test binary serving the
	// defective plugin, see binary_test.go).
	"binary tools unknown ok": {func(t *testing.T) {
		sdktest.RunBinary(t, os.Args[0], sdktest.WithEnv(serveEnv+"=tools-unknown"))
	}, "want a status.NotFound"},
	"binary memory leaks users": {func(t *testing.T) {
		sdktest.RunBinary(t, os.Args[0], sdktest.WithEnv(serveEnv+"=memory-leaking"))
	}, "another user recalled alice's"},
	"binary not a plugin": {func(t *testing.T) {
		sdktest.RunBinary(t, "/bin/true")
	}, "sdktest: launch /bin/true"},
}

const brokenEnv = "SDKTEST_BROKEN_CASE"

func TestSuitesCatchBrokenPlugins(t *testing.T) {
	t.Parallel()
	for name, bc := range brokenCases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestHelperBrokenPlugin$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), brokenEnv+"="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a plugin with defect %q:\n%s", name, out)
			}
			if !strings.Contains(string(out), bc.want) {
				t.Fatalf("the suite failed without reporting %q:\n%s", bc.want, out)
			}
		})
	}
}

// TestHelperBrokenPlugin is the helper process of
// TestSuitesCatchBrokenPlugins; it does nothing in a normal run.
func TestHelperBrokenPlugin(t *testing.T) {
	name := os.Getenv(brokenEnv)
	if name == "" {
		t.Skip("helper process for TestSuitesCatchBrokenPlugins")
	}
	brokenCases[name].run(t)
}
