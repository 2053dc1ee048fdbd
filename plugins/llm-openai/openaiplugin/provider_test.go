package openaiplugin

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/nemoclave/nemoclave/internal/testupstream"
	"github.com/nemoclave/nemoclave/sdk/embeddings"
	"github.com/nemoclave/nemoclave/sdk/llm"
	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/sdktest"
	"github.com/nemoclave/nemoclave/sdk/status"
)

const key = "sk-openai-test-KEY-0123456789abcdef"

func cfgJSON(up string, extra map[string]any) string {
	m := map[string]any{"base_url": up + "/v1", "api_key": key, "timeout": "30s"}
	for k, v := range extra {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// TestConformance runs the SDK's LLM suite against the testupstream
// stand-in in a separate process.
func TestConformance(t *testing.T) {
	t.Parallel()
	up := testupstream.Start(t, key)
	sdktest.LLM(t, New(), sdktest.WithConfig(cfgJSON(up, nil)), sdktest.WithModel("gpt-test"), sdktest.WithDeterministic())
}

func provider(t *testing.T, cfg string) llm.Provider {
	t.Helper()
	c := plugin.InProcess(t, New())
	if diags, err := c.Configure(context.Background(), plugin.ConfigureOptions{Config: json.RawMessage(cfg)}); err != nil || len(diags) > 0 {
		t.Fatalf("configure: %v %v", err, diags)
	}
	return c.LLM()
}

func TestErrorsAreClassifiedAndRedacted(t *testing.T) {
	t.Parallel()
	up := testupstream.Start(t, key)
	p := provider(t, cfgJSON(up, nil))
	ctx := context.Background()
	for model, want := range map[string]status.Code{"fail-429": status.RateLimited, "fail-500": status.Unavailable, "fail-400": status.InvalidArgument, "leak-key": status.Unavailable} {
		_, err := p.Chat(ctx, &llm.ChatRequest{Model: model, Messages: []llm.Message{{Role: "user", Content: []llm.ContentPart{llm.Text("x")}}}})
		if status.CodeOf(err) != want {
			t.Errorf("%s: %v, want %v", model, err, want)
		}
		if err != nil && (strings.Contains(err.Error(), key) || strings.Contains(err.Error(), key[:8])) {
			t.Errorf("%s: key in error: %v", model, err)
		}
		serr := p.ChatStream(ctx, &llm.ChatRequest{Model: model}, func(*llm.ChatChunk) error { return nil })
		if status.CodeOf(serr) != want {
			t.Errorf("%s stream: %v", model, serr)
		}
	}
	bad := provider(t, cfgJSON(up, map[string]any{"api_key": "sk-wrong-key-000000000000"}))
	_, err := bad.ListModels(ctx)
	if status.CodeOf(err) != status.Unauthenticated || !strings.Contains(err.Error(), "nemoclave provider add") {
		t.Fatalf("wrong key: %v", err)
	}
	down := provider(t, `{"base_url":"http://127.0.0.1:1/v1"}`)
	if _, err := down.Chat(ctx, &llm.ChatRequest{Model: "m"}); status.CodeOf(err) != status.Unavailable {
		t.Fatalf("unreachable: %v", err)
	}
}

func TestHeadersModelsOverrideAndExtra(t *testing.T) {
	t.Parallel()
	up := testupstream.Start(t, key)
	p := provider(t, cfgJSON(up, map[string]any{"headers": map[string]string{"OpenAI-Project": "proj_1"}, "models": []string{"a", "b"}}))
	ms, err := p.ListModels(context.Background())
	if err != nil || len(ms) != 2 || ms[1].ID != "b" {
		t.Fatalf("%v %+v", err, ms)
	}
	if _, err := p.Chat(context.Background(), &llm.ChatRequest{Model: "gpt-test", Extra: json.RawMessage(`{"seed":7}`)}); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(up + "/_last_headers")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h http.Header
	_ = json.NewDecoder(resp.Body).Decode(&h)
	if h.Get("OpenAI-Project") != "proj_1" || h.Get("Authorization") != "Bearer "+key {
		t.Fatalf("headers %v", h)
	}
	listed := provider(t, cfgJSON(up, nil))
	if ms, err := listed.ListModels(context.Background()); err != nil || len(ms) != len(testupstream.Models) {
		t.Fatalf("GET /models: %v %+v", err, ms)
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	for raw, path := range map[string]string{
		`{"base_url":"ftp://x"}`:                    "base_url",
		`{"timeout":"soon"}`:                        "timeout",
		`{"headers":{"Authorization":"Bearer x"}}`:  "headers",
		`{"api_key":"a\nb"}`:                        "api_key",
		`{"base_url":"http://localhost:11434/v1/"}`: "",
		`{"base_url":"https://integrate.api.nvidia.com/v1","api_key":"nvapi-x","timeout":"2m"}`: "",
	} {
		diags := New().ValidateConfig(context.Background(), json.RawMessage(raw))
		if path == "" && len(diags) > 0 || path != "" && (len(diags) != 1 || diags[0].Path[0] != path) {
			t.Errorf("%s: %+v, want one at %q", raw, diags, path)
		}
	}
	if s := New().ConfigSchema(); !s.Block.Attributes[1].Credential || !s.Block.Attributes[1].Sensitive {
		t.Fatal("api_key must be a sensitive credential attribute")
	}
}

// BenchmarkChatStream measures one streamed completion through the
// plugin (called directly, no gRPC) from the stand-in upstream.
func BenchmarkChatStream(b *testing.B) {
	up := testupstream.Start(b, key)
	p := New()
	if err := p.Configure(context.Background(), plugin.Config{JSON: json.RawMessage(cfgJSON(up, nil))}, nil); err != nil {
		b.Fatal(err)
	}
	req := &llm.ChatRequest{Model: "gpt-test", Messages: []llm.Message{{Role: "user", Content: []llm.ContentPart{llm.Text(strings.Repeat("word ", 200))}}}}
	b.ReportAllocs()
	for b.Loop() {
		if err := p.ChatStream(context.Background(), req, func(*llm.ChatChunk) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}

// TestEmbeddingsConformance runs the SDK's embeddings suite: the plugin
// also serves the embeddings kind through POST /embeddings.
func TestEmbeddingsConformance(t *testing.T) {
	t.Parallel()
	up := testupstream.Start(t, key)
	sdktest.Embeddings(t, New(), sdktest.WithConfig(cfgJSON(up, map[string]any{"embedding_model": "embed-test"})))
}

func TestEmbeddingsErrors(t *testing.T) {
	t.Parallel()
	up := testupstream.Start(t, key)
	c := plugin.InProcess(t, New())
	if _, err := c.Configure(context.Background(), plugin.ConfigureOptions{Config: json.RawMessage(cfgJSON(up, nil))}); err != nil {
		t.Fatal(err)
	}
	e := c.Embeddings()
	if _, err := e.Embed(context.Background(), &embeddings.EmbedRequest{Inputs: []string{"x"}}); status.CodeOf(err) != status.InvalidArgument || !strings.Contains(err.Error(), "embedding_model") {
		t.Fatalf("no model: %v", err)
	}
	if _, err := e.Embed(context.Background(), &embeddings.EmbedRequest{Model: "fail-429", Inputs: []string{"x"}}); status.CodeOf(err) != status.RateLimited {
		t.Fatalf("429: %v", err)
	}
	resp, err := e.Embed(context.Background(), &embeddings.EmbedRequest{Model: "m", Inputs: []string{"a", "b"}, Dimensions: 4})
	if err != nil || len(resp.Vectors) != 2 || len(resp.Vectors[0]) != 4 {
		t.Fatalf("%v %+v", err, resp)
	}
}
