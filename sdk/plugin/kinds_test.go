package plugin

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/nemoclave/nemoclave/sdk/llm"
	"github.com/nemoclave/nemoclave/sdk/memory"
	"github.com/nemoclave/nemoclave/sdk/status"
	"github.com/nemoclave/nemoclave/sdk/tools"
)

// echoLLM streams the last user message back word by word.
type echoLLM struct {
	Base
	llm.NotSupported
}

func (echoLLM) Info() Info { return Info{Name: "echo", Version: "1.0.0", Kinds: []Kind{KindLLM}} }
func (echoLLM) ChatStream(_ context.Context, r *llm.ChatRequest, send func(*llm.ChatChunk) error) error {
	for _, w := range strings.Fields(r.Messages[len(r.Messages)-1].Text()) {
		if err := send(&llm.ChatChunk{DeltaText: w + " "}); err != nil {
			return err
		}
	}
	return send(&llm.ChatChunk{FinishReason: llm.FinishStop, Usage: &llm.Usage{OutputTokens: 2}})
}

// oneMemory answers every Recall with one memory.
type oneMemory struct {
	Base
	memory.NotSupported
}

func (oneMemory) Info() Info { return Info{Name: "mem", Version: "1.0.0", Kinds: []Kind{KindMemory}} }
func (oneMemory) Recall(_ context.Context, s memory.Scope, q string, _ int, _ float64) ([]memory.Scored, error) {
	return []memory.Scored{{Memory: memory.Memory{ID: "m", Scope: s, Text: "remembered " + q}, Score: 1}}, nil
}

// composer is a tools plugin wired to an LLM and a memory store: its one
// tool recalls, then asks the LLM over a stream, all through the host.
type composer struct {
	Base
	host Host
}

func (*composer) Info() Info {
	return Info{Name: "composer", Version: "0.1.0", Kinds: []Kind{KindTools}}
}
func (c *composer) Configure(_ context.Context, _ Config, h Host) error { c.host = h; return nil }
func (*composer) ListTools(context.Context) ([]tools.Tool, error) {
	return []tools.Tool{{Name: "compose", InputSchema: json.RawMessage(`{"type":"object"}`)}}, nil
}
func (c *composer) CallTool(ctx context.Context, req *tools.CallRequest) (*tools.CallResult, error) {
	if _, err := c.host.LLM("memory"); status.CodeOf(err) != status.InvalidArgument {
		return tools.ErrorResult("LLM(memory) should be a kind mismatch, got " + errString(err)), nil
	}
	mem, err := c.host.Memory("memory")
	if err != nil {
		return nil, err
	}
	got, err := mem.Recall(ctx, memory.Scope{Agent: req.Context.Agent}, "tea", 1, 0)
	if err != nil {
		return nil, err
	}
	model, err := c.host.LLM("llm")
	if err != nil {
		return nil, err
	}
	var chunks []*llm.ChatChunk
	err = model.ChatStream(ctx, &llm.ChatRequest{Messages: []llm.Message{{Role: llm.RoleUser, Content: []llm.ContentPart{llm.Text(got[0].Memory.Text)}}}},
		func(ch *llm.ChatChunk) error { chunks = append(chunks, ch); return nil })
	if err != nil {
		return nil, err
	}
	return &tools.CallResult{Content: []tools.Content{tools.TextContent(llm.Accumulate(chunks).Message.Text())}}, nil
}

func errString(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}

func TestWiringStreamsAndRoutesEveryKind(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := InProcess(t, &composer{})
	diags, err := c.Configure(ctx, ConfigureOptions{Wirings: []HostWiring{
		{Wiring: Wiring{Attribute: "llm", Kind: KindLLM, Target: "plugin.llm.echo"}, Plugin: InProcess(t, echoLLM{})},
		{Wiring: Wiring{Attribute: "memory", Kind: KindMemory, Target: "plugin.memory.mem"}, Plugin: InProcess(t, oneMemory{})},
	}})
	if err != nil || len(diags) != 0 {
		t.Fatalf("configure: %v %+v", err, diags)
	}
	res, err := c.Tools().CallTool(ctx, &tools.CallRequest{Name: "compose", Context: tools.CallContext{Agent: "a"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.IsError || len(res.Content) != 1 || res.Content[0].Text != "remembered tea " {
		t.Fatalf("result = %+v", res)
	}
}

func TestClientAccessorsCoverEveryKind(t *testing.T) {
	t.Parallel()
	c := InProcess(t, echoLLM{})
	for _, k := range Kinds() {
		if _, ok := kindBindings[k]; !ok {
			t.Errorf("kind %s has no binding", k)
		}
		if v, err := c.Kind(k); err != nil || v == nil {
			t.Errorf("Kind(%s) = %v, %v", k, v, err)
		}
	}
	// A kind the plugin does not serve answers NotSupported, not a hang.
	if _, err := c.Memory().Recall(context.Background(), memory.Scope{}, "x", 1, 0); status.CodeOf(err) != status.NotSupported {
		t.Errorf("Memory on an LLM plugin: %v, want NotSupported", err)
	}
	for name, v := range map[string]any{"LLM": c.LLM(), "Retrieval": c.Retrieval(), "Memory": c.Memory(), "Tools": c.Tools(), "DataProc": c.DataProc(), "Embeddings": c.Embeddings()} {
		if v == nil {
			t.Errorf("%s() returned nil", name)
		}
	}
}
