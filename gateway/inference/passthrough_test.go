package inference

import (
	"encoding/json"
	"net/http"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/nemoclave/nemoclave/internal/testupstream"
)

// lastRequest is what the stand-in provider last received.
func lastRequest(t *testing.T, upstream string) testupstream.Recorded {
	t.Helper()
	resp, err := http.Get(upstream + "/_last_request")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rec testupstream.Recorded
	if err := json.NewDecoder(resp.Body).Decode(&rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

func jsonObject(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
	return m
}

// TestSameDialectPassThrough sends request bodies modelled on the
// providers' API references (prompt caching, thinking, system blocks and
// system turns, is_error, beta features; developer role, strict tools,
// max_completion_tokens, reasoning settings) through same-dialect routes
// and checks the provider received them unchanged but for the model name,
// the credential and (OpenAI streams) stream_options.include_usage.
func TestSameDialectPassThrough(t *testing.T) {
	t.Parallel()
	e := newEnv(t, startProviders(t))
	for _, tc := range []struct {
		name, file, path, query, model string
		stream, includeUsage           bool
		headers                        map[string]string
	}{
		{name: "anthropic", file: "anthropic_messages.json", path: "/v1/messages", query: "beta=true", model: "claude-test",
			headers: map[string]string{"anthropic-version": "2023-06-01", "anthropic-beta": "context-management-2025-06-27,interleaved-thinking-2025-05-14", "x-api-key": "agent-fake-key"}},
		{name: "anthropic-stream", file: "anthropic_messages.json", path: "/v1/messages", model: "claude-test", stream: true,
			headers: map[string]string{"anthropic-version": "2023-06-01"}},
		{name: "openai", file: "openai_chat.json", path: "/v1/chat/completions", model: "gpt-test",
			headers: map[string]string{"Authorization": "Bearer agent-fake-key", "OpenAI-Beta": "assistants=v2"}},
		{name: "openai-stream", file: "openai_chat.json", path: "/v1/chat/completions", model: "gpt-test", stream: true},
		{name: "openai-stream-usage", file: "openai_chat.json", path: "/v1/chat/completions", model: "gpt-test", stream: true, includeUsage: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := os.ReadFile("testdata/passthrough/" + tc.file)
			if err != nil {
				t.Fatal(err)
			}
			sent := jsonObject(t, raw)
			if tc.stream {
				sent["stream"] = true
			}
			if tc.includeUsage {
				sent["stream_options"] = map[string]any{"include_usage": true}
			}
			body, _ := json.Marshal(sent)
			path := tc.path
			if tc.query != "" {
				path += "?" + tc.query
			}
			code, hdr, answer := e.post(t, path, string(body), tc.headers)
			if code != http.StatusOK {
				t.Fatalf("status %d: %s", code, answer)
			}
			got := lastRequest(t, e.upstream)
			if got.Path != tc.path || got.Query != tc.query {
				t.Fatalf("provider got %s?%s, want %s?%s", got.Path, got.Query, tc.path, tc.query)
			}
			want := jsonObject(t, body)
			want["model"] = tc.model
			if tc.stream && strings.HasPrefix(tc.name, "openai") {
				want["stream_options"] = map[string]any{"include_usage": true}
			}
			if recv := jsonObject(t, got.Body); !reflect.DeepEqual(recv, want) {
				a, _ := json.MarshalIndent(recv, "", " ")
				b, _ := json.MarshalIndent(want, "", " ")
				t.Fatalf("provider received\n%s\nwant\n%s", a, b)
			}
			for k, v := range tc.headers {
				switch strings.ToLower(k) {
				case "authorization", "x-api-key":
					continue
				}
				if g := got.Headers.Get(k); g != v {
					t.Errorf("header %s: provider got %q, agent sent %q", k, g, v)
				}
			}
			if strings.HasPrefix(tc.name, "anthropic") {
				if got.Headers.Get("x-api-key") != upstreamKey {
					t.Errorf("provider did not get the plugin's key: %q", got.Headers.Get("x-api-key"))
				}
			} else if got.Headers.Get("Authorization") != "Bearer "+upstreamKey {
				t.Errorf("provider did not get the plugin's key: %q", got.Headers.Get("Authorization"))
			}
			if strings.Contains(answer, upstreamKey) || strings.Contains(answer, e.upstream) {
				t.Fatalf("answer leaks the key or the upstream URL: %s", answer)
			}
			if tc.stream {
				if !strings.HasPrefix(hdr.Get("Content-Type"), "text/event-stream") {
					t.Fatalf("content type %q", hdr.Get("Content-Type"))
				}
				usageChunk := strings.Contains(answer, `"choices":[]`)
				if strings.HasPrefix(tc.name, "openai") && usageChunk != tc.includeUsage {
					t.Fatalf("usage-only chunk present=%v, agent asked for it=%v:\n%s", usageChunk, tc.includeUsage, answer)
				}
				if strings.HasPrefix(tc.name, "anthropic") && (!strings.Contains(answer, "event: message_start") || !strings.Contains(answer, "event: message_stop")) {
					t.Fatalf("anthropic event stream incomplete:\n%s", answer)
				}
			}
		})
	}
	if u := e.router.Status().Usage; u.TokensToday == 0 {
		t.Fatalf("forwarded calls were not metered: %+v", u)
	}
}

// TestProviderErrorsReachAgentClean checks that a provider's refusal
// reaches the agent once, without the provider URL or a repeated class.
func TestProviderErrorsReachAgentClean(t *testing.T) {
	t.Parallel()
	e := newEnv(t, startProviders(t))
	for _, tc := range []struct{ path, model string }{
		{"/v1/chat/completions", "bad"},
		{"/v1/messages", "broken"},
		{"/v1/responses", "broken"},
	} {
		body := `{"model":"` + tc.model + `","max_tokens":10,"messages":[{"role":"user","content":"hi"}],"input":"hi"}`
		code, _, answer := e.post(t, tc.path, body, map[string]string{"anthropic-version": "2023-06-01"})
		if code < 400 {
			t.Fatalf("%s %s: status %d", tc.path, tc.model, code)
		}
		for _, bad := range []string{e.upstream, "127.0.0.1", "unavailable: unavailable", "invalid argument: invalid argument", "provider at"} {
			if strings.Contains(answer, bad) {
				t.Errorf("%s %s: error contains %q: %s", tc.path, tc.model, bad, answer)
			}
		}
	}
}
