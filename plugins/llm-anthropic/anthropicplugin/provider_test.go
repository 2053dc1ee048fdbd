package anthropicplugin

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/nemoclave/nemoclave/internal/testupstream"
	"github.com/nemoclave/nemoclave/sdk/llm"
	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/sdktest"
	"github.com/nemoclave/nemoclave/sdk/status"
)

const key = "sk-ant-test-KEY-0123456789abcdef"

func cfgJSON(up string, extra map[string]any) string {
	m := map[string]any{"base_url": up, "api_key": key, "timeout": "30s"}
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
	sdktest.LLM(t, New(), sdktest.WithConfig(cfgJSON(up, nil)), sdktest.WithModel("claude-test"), sdktest.WithDeterministic())
}

func provider(t *testing.T, cfg string) llm.Provider {
	t.Helper()
	c := plugin.InProcess(t, New())
	if diags, err := c.Configure(context.Background(), plugin.ConfigureOptions{Config: json.RawMessage(cfg)}); err != nil || len(diags) > 0 {
		t.Fatalf("configure: %v %v", err, diags)
	}
	return c.LLM()
}

func TestToolConversationAndCachedUsage(t *testing.T) {
	t.Parallel()
	up := testupstream.Start(t, key)
	p := provider(t, cfgJSON(up, nil))
	ctx := context.Background()
	req := &llm.ChatRequest{Model: "claude-test", System: "sys", Tools: []llm.Tool{{Name: "lookup", Parameters: json.RawMessage(`{"type":"object"}`)}},
		Messages: []llm.Message{{Role: "user", Content: []llm.ContentPart{llm.Text("find x")}}}}
	resp, err := p.Chat(ctx, req)
	if err != nil || len(resp.Message.ToolCalls) != 1 || resp.FinishReason != llm.FinishToolCalls || resp.Message.ToolCalls[0].Arguments != `{"q":"find x"}` {
		t.Fatalf("%v %+v", err, resp)
	}
	// Two tool results in a row become one user turn of tool_result blocks.
	req.Messages = append(req.Messages, llm.Message{Role: "assistant", ToolCalls: []llm.ToolCall{resp.Message.ToolCalls[0], {ID: "c2", Name: "lookup", Arguments: "{}"}}},
		llm.Message{Role: "tool", ToolCallID: resp.Message.ToolCalls[0].ID, Content: []llm.ContentPart{llm.Text("r1")}},
		llm.Message{Role: "tool", ToolCallID: "c2", Content: []llm.ContentPart{llm.Text("r2")}})
	var chunks []*llm.ChatChunk
	if err := p.ChatStream(ctx, req, func(c *llm.ChatChunk) error { chunks = append(chunks, c); return nil }); err != nil {
		t.Fatal(err)
	}
	final := llm.Accumulate(chunks)
	if final.Message.Text() != "tool said: r2" || final.FinishReason != llm.FinishStop || final.Usage.InputTokens == 0 {
		t.Fatalf("%+v", final)
	}
}

func TestErrorsAreClassifiedAndRedacted(t *testing.T) {
	t.Parallel()
	up := testupstream.Start(t, key)
	p := provider(t, cfgJSON(up, map[string]any{"headers": map[string]string{"anthropic-beta": "x"}}))
	ctx := context.Background()
	for model, want := range map[string]status.Code{"fail-429": status.RateLimited, "fail-500": status.Unavailable, "fail-400": status.InvalidArgument, "leak-key": status.Unavailable} {
		_, err := p.Chat(ctx, &llm.ChatRequest{Model: model, Messages: []llm.Message{{Role: "user", Content: []llm.ContentPart{llm.Text("x")}}}})
		if status.CodeOf(err) != want || strings.Contains(err.Error(), key) || strings.Contains(err.Error(), key[:8]) {
			t.Errorf("%s: %v, want %v without the key", model, err, want)
		}
	}
	resp, err := http.Get(up + "/_last_headers")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h http.Header
	_ = json.NewDecoder(resp.Body).Decode(&h)
	if h.Get("x-api-key") != key || h.Get("anthropic-version") != "2023-06-01" || h.Get("anthropic-beta") != "x" {
		t.Fatalf("headers %v", h)
	}
	bad := provider(t, cfgJSON(up, map[string]any{"api_key": "sk-ant-wrong-00000000000"}))
	if _, err := bad.ListModels(ctx); status.CodeOf(err) != status.Unauthenticated {
		t.Fatalf("wrong key: %v", err)
	}
	if ms, err := p.ListModels(ctx); err != nil || len(ms) != len(testupstream.Models) {
		t.Fatalf("models: %v %v", err, ms)
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	for raw, path := range map[string]string{
		`{"base_url":"nope"}`:                          "base_url",
		`{"timeout":"-1s"}`:                            "timeout",
		`{"headers":{"X-Api-Key":"k"}}`:                "headers",
		`{"base_url":"https://api.anthropic.com/v1/"}`: "",
	} {
		diags := New().ValidateConfig(context.Background(), json.RawMessage(raw))
		if path == "" && len(diags) > 0 || path != "" && (len(diags) != 1 || diags[0].Path[0] != path) {
			t.Errorf("%s: %+v, want one at %q", raw, diags, path)
		}
	}
}
