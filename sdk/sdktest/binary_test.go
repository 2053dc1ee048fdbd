package sdktest_test

import (
	"os"
	"testing"

	"github.com/nemoclave/nemoclave/sdk/dataproc"
	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/sdktest"
)

// serveEnv makes this test binary serve one of the reference plugins
// below as a real plugin process, for RunBinary to launch.
const serveEnv = "SDKTEST_SERVE"

// served are the plugins this test binary can serve by name.
var served = map[string]func() plugin.Plugin{
	"embeddings":     func() plugin.Plugin { return &hashEmbedder{} },
	"llm":            func() plugin.Plugin { return &echoLLM{} },
	"retrieval":      func() plugin.Plugin { return &memRetrieval{} },
	"memory":         func() plugin.Plugin { return &memMemory{} },
	"memory-wired":   func() plugin.Plugin { return &wiredMemory{} },
	"tools":          func() plugin.Plugin { return &wordTools{} },
	"tools-watcher":  func() plugin.Plugin { return &watchingTools{} },
	"dataproc":       func() plugin.Plugin { return &textProc{} },
	"tools-unknown":  func() plugin.Plugin { return &wordTools{broken: "accepts-anything"} },
	"memory-leaking": func() plugin.Plugin { return &memMemory{broken: "leaks-users"} },
}

func TestMain(m *testing.M) {
	if name := os.Getenv(serveEnv); name != "" && os.Getenv(plugin.Handshake.MagicCookieKey) != "" {
		plugin.Serve(served[name]())
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestRunBinary runs every reference plugin as a separate process through
// go-plugin (handshake, peer credentials) and the suites of the kinds it declares.
func TestRunBinary(t *testing.T) {
	t.Parallel()
	doc := dataproc.Document{Name: "notes.md", MIMEType: "text/markdown", Data: []byte("# a\n\nb\n\nc")}
	for name, opts := range map[string][]sdktest.Option{
		"embeddings":    nil,
		"llm":           {sdktest.WithDeterministic(), sdktest.WithModel("echo-large")},
		"retrieval":     {sdktest.WithTextQueries(), sdktest.WithDimensions(hashDims)},
		"memory":        nil,
		"memory-wired":  {sdktest.WithWiring("embeddings", plugin.KindEmbeddings, &hashEmbedder{}, "")},
		"tools":         {sdktest.WithToolSample("wordcount", `{"text":"one two three"}`)},
		"tools-watcher": {sdktest.WithToolSample("wordcount", `{"text":""}`)},
		"dataproc":      {sdktest.WithDocument(dataproc.OpChunk, doc, `{"trim":true}`)},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sdktest.RunBinary(t, os.Args[0], append(opts, sdktest.WithEnv(serveEnv+"="+name))...)
		})
	}
}
