package openaiplugin

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/nemoclave/nemoclave/sdk/llm"
	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/status"
)

// TestResponsesAPIDefault checks which servers get Responses requests
// forwarded: api.openai.com unless configured off, others only when
// configured on; a server that does not speak it answers NotSupported
// before any request is sent, so the gateway translates instead.
func TestResponsesAPIDefault(t *testing.T) {
	for _, tc := range []struct {
		cfg  string
		want bool
	}{
		{`{}`, true},
		{`{"base_url":"https://api.openai.com/v1"}`, true},
		{`{"base_url":"https://API.OpenAI.com/v1","responses_api":false}`, false},
		{`{"base_url":"http://localhost:11434/v1"}`, false},
		{`{"base_url":"http://localhost:8000/v1","responses_api":true}`, true},
	} {
		c, _, diags := parseConfig(json.RawMessage(tc.cfg))
		if len(diags) > 0 {
			t.Fatalf("%s: %v", tc.cfg, diags)
		}
		if got := c.speaksResponses(); got != tc.want {
			t.Errorf("%s: speaks Responses = %v, want %v", tc.cfg, got, tc.want)
		}
		if tc.want {
			continue
		}
		p := New()
		if err := p.Configure(context.Background(), plugin.Config{JSON: json.RawMessage(tc.cfg)}, nil); err != nil {
			t.Fatal(err)
		}
		err := p.Forward(context.Background(), &llm.ForwardRequest{Dialect: llm.DialectOpenAI, Path: "/responses", Body: []byte(`{}`)},
			func(*llm.ForwardChunk) error { t.Fatal("a request was sent"); return nil })
		if status.CodeOf(err) != status.NotSupported || !strings.Contains(err.Error(), "responses_api") {
			t.Errorf("%s: Forward /responses = %v, want NotSupported naming responses_api", tc.cfg, err)
		}
	}
}
