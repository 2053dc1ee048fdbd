package inference

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/nemoclave/nemoclave/internal/wire/anthropic"
	"github.com/nemoclave/nemoclave/internal/wire/openai"
	"github.com/nemoclave/nemoclave/internal/wire/responses"
)

// TestPassThroughUndecodedBodyIsBounded sends same-dialect bodies the
// gateway cannot translate (a content block, part or item type it does
// not model), which it forwards as they are, and checks that their
// max_tokens (under each API's name) and n are still held to the route's
// limits, that a limit or routing field of the wrong type is refused
// rather than forwarded unbounded, each as a 400 in the API's own error
// shape before anything reaches the provider, and that within the limits
// the body is forwarded.
func TestPassThroughUndecodedBodyIsBounded(t *testing.T) {
	t.Parallel()
	p := startProviders(t)
	e := newEnv(t, p, nativeResponses(t, p))
	const (
		chat = `{"model":"gpt","messages":[{"role":"user","content":[{"type":"future_part","data":"x"}]}]%s}`
		anth = `{"model":"claude","messages":[{"role":"user","content":[{"type":"future_block","data":"x"}]}]%s}`
		resp = `{"model":"gpt-native","input":[{"type":"future_item","data":"x"}]%s}`
	)
	// The bodies take the pass-through path: translation refuses them.
	if _, _, _, err := openai.DecodeChatRequest([]byte(strings.Replace(chat, "%s", "", 1))); err == nil {
		t.Fatal("the chat body decodes; the test needs one that does not")
	}
	if _, _, err := anthropic.DecodeRequest([]byte(strings.Replace(anth, "%s", `,"max_tokens":10`, 1))); err == nil {
		t.Fatal("the Anthropic body decodes; the test needs one that does not")
	}
	if _, _, err := responses.DecodeRequest([]byte(strings.Replace(resp, "%s", "", 1))); err == nil {
		t.Fatal("the Responses body decodes; the test needs one that does not")
	}
	anthHdr := map[string]string{"anthropic-version": "2023-06-01"}
	for _, tc := range []struct {
		name, path, body, extra, want string
		anthropic                     bool
	}{
		{"chat max_tokens", "/v1/chat/completions", chat, `,"max_tokens":99999999`, "max_tokens = 99999999 exceeds the limit of 65536", false},
		{"chat max_completion_tokens", "/v1/chat/completions", chat, `,"max_completion_tokens":99999999`, "exceeds the limit of 65536", false},
		{"chat n", "/v1/chat/completions", chat, `,"n":1000`, "n = 1000 exceeds the limit of 8 choices", false},
		{"chat n zero", "/v1/chat/completions", chat, `,"n":0`, "n must be a positive whole number", false},
		{"chat max_tokens string", "/v1/chat/completions", chat, `,"max_tokens":"99999999"`, "max_tokens must be a whole number", false},
		{"chat max_tokens fraction", "/v1/chat/completions", chat, `,"max_tokens":1.5`, "max_tokens must be a whole number", false},
		{"chat stream string", "/v1/chat/completions", chat, `,"stream":"yes"`, "stream must be true or false", false},
		{"chat model number", "/v1/chat/completions", chat, `,"model":7`, "model must be a string", false},
		{"anthropic max_tokens", "/v1/messages", anth, `,"max_tokens":99999999`, "exceeds the limit of 65536", true},
		{"anthropic max_tokens negative", "/v1/messages", anth, `,"max_tokens":-5`, "max_tokens must not be negative", true},
		{"responses max_output_tokens", "/v1/responses", resp, `,"max_output_tokens":99999999`, "exceeds the limit of 65536", false},
		{"responses max_output_tokens object", "/v1/responses", resp, `,"max_output_tokens":{"a":1}`, "max_output_tokens must be a whole number", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := lastRequest(t, e.upstream)
			hdr := map[string]string{}
			if tc.anthropic {
				hdr = anthHdr
			}
			code, _, answer := e.post(t, tc.path, strings.Replace(tc.body, "%s", tc.extra, 1), hdr)
			if code != http.StatusBadRequest || !strings.Contains(answer, tc.want) {
				t.Fatalf("status %d, answer %s; want 400 saying %q", code, answer, tc.want)
			}
			var shape struct {
				Type  string `json:"type"`
				Error struct {
					Type    string `json:"type"`
					Message string `json:"message"`
				} `json:"error"`
			}
			if err := json.Unmarshal([]byte(answer), &shape); err != nil || shape.Error.Message == "" {
				t.Fatalf("the refusal is not an error object: %s", answer)
			}
			if tc.anthropic && (shape.Type != "error" || shape.Error.Type != "invalid_request_error") {
				t.Fatalf("not in Anthropic's error shape: %s", answer)
			}
			if !tc.anthropic && (shape.Type != "" || shape.Error.Type != "invalid_request_error") {
				t.Fatalf("not in OpenAI's error shape: %s", answer)
			}
			if after := lastRequest(t, e.upstream); after.Path != before.Path || string(after.Body) != string(before.Body) {
				t.Fatalf("the refused request reached the provider: %s %s", after.Path, after.Body)
			}
		})
	}
	// Within the limits the same bodies are forwarded as they are.
	for _, tc := range []struct{ path, body, extra string }{
		{"/v1/chat/completions", chat, `,"max_tokens":100,"n":2`},
		{"/v1/messages", anth, `,"max_tokens":100`},
		{"/v1/responses", resp, `,"max_output_tokens":100`},
	} {
		hdr := map[string]string{}
		if tc.path == "/v1/messages" {
			hdr = anthHdr
		}
		e.post(t, tc.path, strings.Replace(tc.body, "%s", tc.extra, 1), hdr)
		got := lastRequest(t, e.upstream)
		if got.Path != tc.path || !strings.Contains(string(got.Body), "future_") {
			t.Errorf("%s within the limits did not reach the provider as it is: %s %s", tc.path, got.Path, got.Body)
		}
	}
}

// TestPassThroughGetsBudgetFit checks that a forwarded request without
// max_tokens, sent when the budget has less room than the route's limit,
// reaches the provider with the max_tokens the gateway reserved, as a
// translated one does, so the provider cannot produce more than was
// reserved.
func TestPassThroughGetsBudgetFit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, startProviders(t), func(c *Config) { c.Limits.Budget.TokensPerDay = 1000 })
	for _, tc := range []struct {
		path, body, key string
		decodes         bool
	}{
		{"/v1/chat/completions", `{"model":"gpt","messages":[{"role":"user","content":"hi"}]}`, "max_completion_tokens", true},
		// The stand-in refuses the part it does not know either; what
		// matters is what it received.
		{"/v1/chat/completions", `{"model":"gpt","messages":[{"role":"user","content":[{"type":"future_part"}]}]}`, "max_completion_tokens", false},
		{"/v1/messages", `{"model":"claude","messages":[{"role":"user","content":"hi"}]}`, "max_tokens", true},
	} {
		code, _, answer := e.post(t, tc.path, tc.body, map[string]string{"anthropic-version": "2023-06-01"})
		if tc.decodes && code != http.StatusOK {
			t.Fatalf("status %d: %s", code, answer)
		}
		got := jsonObject(t, lastRequest(t, e.upstream).Body)
		v, ok := got[tc.key].(float64)
		if !ok || v <= 0 || v > 1000 {
			t.Fatalf("%s %s reached the provider with %s = %v, want the reserved amount (at most the budget's 1000)", tc.path, tc.body, tc.key, got[tc.key])
		}
	}
}

// TestNullBodyIsRefused: json.Unmarshal takes null for an empty map, so a
// null body passed the object check and then had no object to forward (it
// panicked in the handler). It is a 400 on every endpoint now, and never
// reaches the provider.
func TestNullBodyIsRefused(t *testing.T) {
	t.Parallel()
	p := startProviders(t)
	e := newEnv(t, p, nativeResponses(t, p))
	for _, path := range []string{"/v1/chat/completions", "/v1/messages", "/v1/responses"} {
		for _, body := range []string{"null", " null ", "[]", `"x"`} {
			before := lastRequest(t, e.upstream)
			code, _, answer := e.post(t, path, body, map[string]string{"anthropic-version": "2023-06-01"})
			if code != http.StatusBadRequest || !strings.Contains(answer, "not a valid") {
				t.Errorf("%s %q: status %d, answer %s; want 400", path, body, code, answer)
			}
			if after := lastRequest(t, e.upstream); after.Path != before.Path || string(after.Body) != string(before.Body) {
				t.Errorf("%s %q reached the provider", path, body)
			}
		}
	}
}
