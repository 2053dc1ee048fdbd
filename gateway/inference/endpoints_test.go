package inference

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestCountTokensAndModelByID covers the endpoints Claude Code and model
// pickers call besides chat: count_tokens asked of the Anthropic provider
// (with the agent's headers) or estimated for other routes, and
// GET /v1/models/{id} in both shapes.
func TestCountTokensAndModelByID(t *testing.T) {
	t.Parallel()
	e := newEnv(t, startProviders(t))
	body := `{"model":"claude","system":"be brief","messages":[{"role":"user","content":"one two three"},{"role":"system","content":"four"}]}`
	code, hdr, answer := e.post(t, "/v1/messages/count_tokens?beta=true", body, map[string]string{"anthropic-version": "2023-06-01", "anthropic-beta": "token-counting-2024-11-01"})
	if code != http.StatusOK || strings.TrimSpace(answer) != `{"input_tokens":6}` || hdr.Get(RouteHeader) != "claude anthropic" {
		t.Fatalf("count_tokens via the provider: %d %v %s", code, hdr, answer)
	}
	got := lastRequest(t, e.upstream)
	if got.Path != "/v1/messages/count_tokens" || got.Query != "beta=true" || got.Headers.Get("anthropic-beta") != "token-counting-2024-11-01" {
		t.Fatalf("provider got %+v", got)
	}
	if m := jsonObject(t, got.Body); m["model"] != "claude-test" {
		t.Fatalf("provider got model %v", m["model"])
	}
	// An OpenAI-compatible route cannot count Anthropic requests: estimate.
	code, _, answer = e.post(t, "/v1/messages/count_tokens", strings.Replace(body, `"claude"`, `"gpt"`, 1), map[string]string{"anthropic-version": "2023-06-01"})
	var n struct {
		InputTokens int64 `json:"input_tokens"`
	}
	if code != http.StatusOK || json.Unmarshal([]byte(answer), &n) != nil || n.InputTokens <= 0 {
		t.Fatalf("estimated count_tokens: %d %s", code, answer)
	}

	get := func(path string, hdr map[string]string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, e.url+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			k, err := resp.Body.Read(buf)
			b.Write(buf[:k])
			if err != nil {
				break
			}
		}
		return resp.StatusCode, b.String()
	}
	if code, answer := get("/v1/models/claude", nil); code != 200 || !strings.Contains(answer, `"id":"claude"`) || !strings.Contains(answer, `"object":"model"`) {
		t.Fatalf("openai model by id: %d %s", code, answer)
	}
	if code, answer := get("/v1/models/claude-test", map[string]string{"anthropic-version": "2023-06-01"}); code != 200 || !strings.Contains(answer, `"type":"model"`) {
		t.Fatalf("anthropic model by provider name: %d %s", code, answer)
	}
	if code, answer := get("/v1/models/embed", nil); code != 404 || !strings.Contains(answer, "use one of") {
		t.Fatalf("an embeddings alias is not a chat model: %d %s", code, answer)
	}
	if code, answer := get("/v1/models/nope", map[string]string{"anthropic-version": "2023-06-01"}); code != 404 || !strings.Contains(answer, `"type":"not_found_error"`) {
		t.Fatalf("anthropic 404 shape: %d %s", code, answer)
	}
	if code, _, answer := e.post(t, "/v1/messages/batches", `{}`, map[string]string{"anthropic-version": "2023-06-01"}); code != 404 || !strings.Contains(answer, `"type":"error"`) {
		t.Fatalf("unknown anthropic path answers in the anthropic shape: %d %s", code, answer)
	}
}
