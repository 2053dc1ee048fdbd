package sdktest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/nemoclave/nemoclave/sdk/dataproc"
	"github.com/nemoclave/nemoclave/sdk/embeddings"
	"github.com/nemoclave/nemoclave/sdk/llm"
	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/schema"
	"github.com/nemoclave/nemoclave/sdk/status"
	"github.com/nemoclave/nemoclave/sdk/tools"
)

// The reference plugins below are small but honest implementations of
// each kind. Each has a broken field: the named defect lets the helper
// process prove the suite catches it.

const hashDims = 16

// hashEmbed is a bag-of-words hashing embedding: deterministic, and
// texts sharing words point the same way.
func hashEmbed(text string) []float32 {
	v := make([]float32, hashDims)
	for _, w := range strings.Fields(strings.ToLower(text)) {
		h := fnv.New32a()
		h.Write([]byte(w))
		x := h.Sum32()
		sign := float32(1)
		if x&1 == 1 {
			sign = -1
		}
		v[(x>>1)%hashDims] += sign
	}
	normalize(v)
	return v
}

func normalize(v []float32) {
	var n float64
	for _, x := range v {
		n += float64(x) * float64(x)
	}
	if n == 0 {
		return
	}
	for i := range v {
		v[i] = float32(float64(v[i]) / math.Sqrt(n))
	}
}

func cosine(a, b []float32) float64 {
	var dot, na, nb float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	if na == 0 || nb == 0 {
		return 0
	}
	return dot / math.Sqrt(na*nb)
}

type hashEmbedder struct {
	plugin.Base
	broken string
}

func (*hashEmbedder) Info() plugin.Info {
	return plugin.Info{Name: "embeddings-hash", Version: "0.1.0", Kinds: []plugin.Kind{plugin.KindEmbeddings}}
}

func (e *hashEmbedder) Embed(_ context.Context, r *embeddings.EmbedRequest) (*embeddings.EmbedResponse, error) {
	out := &embeddings.EmbedResponse{Model: "hash"}
	for _, in := range r.Inputs {
		v := hashEmbed(in)
		if e.broken == "noisy" {
			v[0] += rand.Float32()
		}
		out.Vectors = append(out.Vectors, v)
	}
	if e.broken == "reversed" {
		slices.Reverse(out.Vectors)
	}
	return out, nil
}

func (*hashEmbedder) Dimensions(context.Context, string) (int, error) { return hashDims, nil }

// echoLLM answers with the last user message, streaming it word by word.
type echoLLM struct {
	plugin.Base
	broken string
}

func (*echoLLM) Info() plugin.Info {
	return plugin.Info{Name: "llm-echo", Version: "0.1.0", Kinds: []plugin.Kind{plugin.KindLLM}}
}

func (*echoLLM) ListModels(context.Context) ([]llm.Model, error) {
	return []llm.Model{{ID: "echo", OwnedBy: "sdktest", Capabilities: []string{"streaming"}}, {ID: "echo-large"}}, nil
}

func lastUser(r *llm.ChatRequest) string {
	for i := len(r.Messages) - 1; i >= 0; i-- {
		if r.Messages[i].Role == llm.RoleUser {
			return r.Messages[i].Text()
		}
	}
	return ""
}

func (e *echoLLM) Chat(_ context.Context, r *llm.ChatRequest) (*llm.ChatResponse, error) {
	text := "echo: " + lastUser(r)
	resp := &llm.ChatResponse{ID: "chat-1", Model: r.Model, FinishReason: llm.FinishStop,
		Message: llm.Message{Role: llm.RoleAssistant, Content: []llm.ContentPart{llm.Text(text)}},
		Usage:   llm.Usage{InputTokens: int64(len(strings.Fields(lastUser(r)))), OutputTokens: int64(len(strings.Fields(text)))}}
	if e.broken == "no-finish" {
		resp.FinishReason = ""
	}
	return resp, nil
}

func (e *echoLLM) ChatStream(ctx context.Context, r *llm.ChatRequest, send func(*llm.ChatChunk) error) error {
	words := strings.Fields("echo: " + lastUser(r))
	for i, w := range words {
		if i > 0 {
			w = " " + w
		}
		if err := send(&llm.ChatChunk{ID: "chat-1", Model: r.Model, DeltaText: w}); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	final := &llm.ChatChunk{ID: "chat-1", FinishReason: llm.FinishStop, Usage: &llm.Usage{InputTokens: int64(len(words) - 1), OutputTokens: int64(len(words))}}
	if e.broken == "double-finish" {
		if err := send(final); err != nil {
			return err
		}
	}
	return send(final)
}

var wordcountTool = tools.Tool{
	Name:         "wordcount",
	Description:  "Count the words in a text.",
	InputSchema:  json.RawMessage(`{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}`),
	OutputSchema: json.RawMessage(`{"type":"object","properties":{"words":{"type":"integer"}}}`),
	ReadOnly:     true,
}

// wordTools serves one tool. It is not a Watcher.
type wordTools struct {
	plugin.Base
	broken string
}

func (*wordTools) Info() plugin.Info {
	return plugin.Info{Name: "tools-words", Version: "0.1.0", Kinds: []plugin.Kind{plugin.KindTools}}
}

func (w *wordTools) ListTools(context.Context) ([]tools.Tool, error) {
	t := wordcountTool
	if w.broken == "array-schema" {
		t.InputSchema = json.RawMessage(`{"type":"array"}`)
	}
	return []tools.Tool{t}, nil
}

func (w *wordTools) CallTool(_ context.Context, req *tools.CallRequest) (*tools.CallResult, error) {
	if req.Name != wordcountTool.Name && w.broken != "accepts-anything" {
		return nil, status.Errorf(status.NotFound, "no tool %q; ListTools names the tools", req.Name)
	}
	var args struct{ Text *string }
	if err := json.Unmarshal(req.Arguments, &args); err != nil || args.Text == nil {
		return tools.ErrorResult(`arguments must be {"text": "..."}`), nil
	}
	n := len(strings.Fields(*args.Text))
	return &tools.CallResult{Content: []tools.Content{tools.TextContent(fmt.Sprintf("%d words", n))},
		Structured: json.RawMessage(fmt.Sprintf(`{"words":%d}`, n))}, nil
}

// watchingTools adds tools.Watcher: the list, then nothing until cancel.
type watchingTools struct{ wordTools }

func (w *watchingTools) WatchTools(ctx context.Context, fn func([]tools.Tool)) error {
	ts, _ := w.ListTools(ctx)
	fn(ts)
	<-ctx.Done()
	return ctx.Err()
}

// textProc extracts, chunks by paragraph and generates CSV from lines.
type textProc struct {
	plugin.Base
	broken string
}

func (*textProc) Info() plugin.Info {
	return plugin.Info{Name: "dataproc-text", Version: "0.1.0", Kinds: []plugin.Kind{plugin.KindDataProc}}
}

func (*textProc) ListOperations(context.Context) ([]dataproc.Operation, error) {
	return []dataproc.Operation{
		{Name: dataproc.OpExtractText, Description: "text as is", InputTypes: []string{"text/*"}, OutputTypes: []string{"text/plain"}},
		{Name: dataproc.OpChunk, Description: "paragraphs", InputTypes: []string{"text/*"}, OptionsSchema: json.RawMessage(`{"type":"object","properties":{"trim":{"type":"boolean"}}}`)},
		{Name: dataproc.OpGenerate, Description: "one CSV row per line", InputTypes: []string{"text/plain"}, OutputTypes: []string{"text/csv"}},
	}, nil
}

func (p *textProc) Transform(_ context.Context, r *dataproc.TransformRequest) (*dataproc.TransformResponse, error) {
	text := string(r.Input.Data)
	switch r.Operation {
	case dataproc.OpExtractText:
		return &dataproc.TransformResponse{Text: text}, nil
	case dataproc.OpChunk:
		resp := &dataproc.TransformResponse{Text: text}
		start := 0
		for _, para := range strings.SplitAfter(text, "\n\n") {
			end := start + len(strings.TrimRight(para, "\n"))
			if end > start {
				ch := dataproc.Chunk{Index: len(resp.Chunks), Text: text[start:end], Start: int64(start), End: int64(end)}
				if p.broken == "offsets" {
					ch.Start++
				}
				resp.Chunks = append(resp.Chunks, ch)
			}
			start += len(para)
		}
		return resp, nil
	case dataproc.OpGenerate:
		var b strings.Builder
		b.WriteString("line\n")
		for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
			fmt.Fprintf(&b, "%q\n", l)
		}
		return &dataproc.TransformResponse{Outputs: []dataproc.Document{{Name: "lines.csv", MIMEType: "text/csv", Data: []byte(b.String())}}}, nil
	}
	return nil, status.Errorf(status.NotFound, "no operation %q; ListOperations names them", r.Operation)
}

// configured has a schema with defaults and validates them.
type configured struct {
	hashEmbedder
	badDefault bool
}

func (c *configured) ConfigSchema() *schema.Schema {
	def := json.RawMessage(`16`)
	if c.badDefault {
		def = json.RawMessage(`-1`)
	}
	return &schema.Schema{Block: schema.Block{Attributes: []schema.Attribute{
		{Name: "dimensions", Type: "number", Default: def, Description: "vector size"},
		{Name: "prefix", Type: "string", Default: json.RawMessage(`""`)},
	}}}
}

func (*configured) ValidateConfig(_ context.Context, raw json.RawMessage) []plugin.Diagnostic {
	var c struct{ Dimensions float64 }
	if err := json.Unmarshal(raw, &c); err != nil {
		return []plugin.Diagnostic{plugin.Errorf(nil, "config is not JSON: %v", err)}
	}
	if c.Dimensions <= 0 {
		return []plugin.Diagnostic{plugin.Errorf([]string{"dimensions"}, "dimensions must be positive, got %v", c.Dimensions)}
	}
	return nil
}
