package azureplugin

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/nemoclave/nemoclave/internal/cloudstandin"
	"github.com/nemoclave/nemoclave/sdk/llm"
	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/status"
)

func forward(t *testing.T, p *Plugin, req *llm.ForwardRequest) (int, string, error) {
	t.Helper()
	code, out := 0, ""
	err := p.Forward(context.Background(), req, func(c *llm.ForwardChunk) error {
		if c.Status != 0 {
			code = c.Status
		}
		out += string(c.Data)
		return nil
	})
	return code, out, err
}

// TestAzureOpenAIForwardsChatCompletions: chat completions reach the
// deployment of the body's model as the agent wrote them, with the Entra
// token (verified by the stand-in) or the api-key, at the configured
// api-version whatever the agent's query said; other paths are left to
// the gateway's translation.
func TestAzureOpenAIForwardsChatCompletions(t *testing.T) {
	t.Parallel()
	e := cloudstandin.StartEntra(t, testSecret, "")
	a := cloudstandin.StartAzure(t, e, "")
	p := newPlugin(e)
	if err := p.Configure(context.Background(), plugin.Config{JSON: json.RawMessage(azureConfig(a, e, map[string]any{"client_secret": testSecret}))}, nil); err != nil {
		t.Fatal(err)
	}
	body := `{"model":"gpt-4o","messages":[{"role":"user","content":"hello"}]}`
	code, out, err := forward(t, p, &llm.ForwardRequest{Dialect: llm.DialectOpenAI, Path: "/chat/completions", Query: "api-version=1999-01-01",
		Headers: map[string]string{"api-key": "agent-supplied", "Authorization": "Bearer agent"}, Body: []byte(body)})
	if err != nil || code != 200 {
		t.Fatalf("forward: %d %v\n%s", code, err, out)
	}
	var resp struct {
		Choices []struct {
			Message struct{ Content string } `json:"message"`
		} `json:"choices"`
	}
	if json.Unmarshal([]byte(out), &resp) != nil || len(resp.Choices) != 1 || resp.Choices[0].Message.Content != "echo: hello" {
		t.Fatalf("answer: %s", out)
	}
	tokens, h, q := a.Seen()
	if len(tokens) != 1 || q != "api-version="+defaultAPIVersion || h.Get("api-key") != "" {
		t.Fatalf("tokens %v, query %q, api-key %q: want one verified Entra token at the configured api-version and no agent credential", tokens, q, h.Get("api-key"))
	}

	// A stream comes back as Azure's event stream, usage included when asked.
	code, out, err = forward(t, p, &llm.ForwardRequest{Dialect: llm.DialectOpenAI, Path: "/chat/completions", Stream: true,
		Body: []byte(`{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hello"}]}`)})
	if err != nil || code != 200 || !strings.Contains(out, "data: ") || !strings.Contains(out, "[DONE]") || !strings.Contains(out, `"usage"`) {
		t.Fatalf("stream: %d %v\n%s", code, err, out)
	}

	// Errors keep their class; a model without a deployment is named.
	for model, want := range map[string]status.Code{"busy": status.RateLimited, "unmapped": status.NotFound} {
		_, _, err := forward(t, p, &llm.ForwardRequest{Dialect: llm.DialectOpenAI, Path: "/chat/completions", Body: []byte(`{"model":"` + model + `","messages":[]}`)})
		if status.CodeOf(err) != want {
			t.Errorf("%s: %v, want %v", model, err, want)
		}
	}
	before, _, _ := a.Seen()
	for _, req := range []*llm.ForwardRequest{
		{Dialect: llm.DialectOpenAI, Path: "/responses", Body: []byte(`{"model":"gpt-4o"}`)},
		{Dialect: llm.DialectAnthropic, Path: "/messages", Body: []byte(`{"model":"gpt-4o"}`)},
	} {
		if _, _, err := forward(t, p, req); status.CodeOf(err) != status.NotSupported {
			t.Errorf("%s %s: %v, want NotSupported (the gateway translates)", req.Dialect, req.Path, err)
		}
	}
	if after, _, _ := a.Seen(); len(after) != len(before) {
		t.Error("a request the plugin does not forward reached Azure")
	}

	// With an api-key the key is sent, never a bearer token.
	k := cloudstandin.StartAzure(t, nil, testAPIKey)
	kp := New()
	if err := kp.Configure(context.Background(), plugin.Config{JSON: json.RawMessage(azureConfig(k, nil, map[string]any{"api_key": testAPIKey}))}, nil); err != nil {
		t.Fatal(err)
	}
	if code, out, err := forward(t, kp, &llm.ForwardRequest{Dialect: llm.DialectOpenAI, Path: "/chat/completions", Body: []byte(body)}); err != nil || code != 200 || !strings.Contains(out, "echo: hello") {
		t.Fatalf("api-key forward: %d %v\n%s", code, err, out)
	}
	if _, h, _ := k.Seen(); h.Get("api-key") != testAPIKey || h.Get("Authorization") != "" {
		t.Fatalf("api-key headers: %v", h)
	}
}
