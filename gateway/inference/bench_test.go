package inference

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nemoclave/nemoclave/sdk/llm"
)

// fixed answers instantly, so the benchmarks measure the router alone.
type fixed struct{ llm.NotSupported }

var fixedText = strings.Repeat("lorem ", 170)

func (fixed) Chat(context.Context, *llm.ChatRequest) (*llm.ChatResponse, error) {
	return &llm.ChatResponse{ID: "r", Message: llm.Message{Role: "assistant", Content: []llm.ContentPart{llm.Text(fixedText)}},
		FinishReason: "stop", Usage: llm.Usage{InputTokens: 3, OutputTokens: 170}}, nil
}

func (fixed) ChatStream(_ context.Context, _ *llm.ChatRequest, send func(*llm.ChatChunk) error) error {
	for i := 0; i < 50; i++ {
		if err := send(&llm.ChatChunk{ID: "r", DeltaText: "lorem lorem lorem "}); err != nil {
			return err
		}
	}
	return send(&llm.ChatChunk{FinishReason: "stop", Usage: &llm.Usage{InputTokens: 3, OutputTokens: 150}})
}

func benchRouter(b *testing.B) *Router {
	m, _ := NewMetrics(prometheus.NewRegistry())
	store, err := OpenSQLiteUsage(b.TempDir() + "/u.db")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	r, err := New(context.Background(), Config{Sandbox: "sb", Providers: map[string]llm.Provider{"f": fixed{}}, Usage: store, Metrics: m,
		Routes: Routes{Default: "a", Models: map[string]Route{"a": {Provider: "f", Model: "gpt-test"}}}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(r.Close)
	return r
}

// BenchmarkRouter measures the router's own cost per request (decode,
// route, meter, encode) with an instant in-process provider.
func BenchmarkRouter(b *testing.B) {
	for _, tc := range []struct{ name, body string }{
		{"unary", `{"model":"a","messages":[{"role":"user","content":"benchmark"}]}`},
		{"stream", `{"model":"a","stream":true,"messages":[{"role":"user","content":"benchmark"}]}`},
		{"anthropic-stream", `{"model":"a","stream":true,"max_tokens":5,"messages":[{"role":"user","content":"benchmark"}]}`},
	} {
		b.Run(tc.name, func(b *testing.B) {
			r := benchRouter(b)
			path := "/v1/chat/completions"
			if strings.HasPrefix(tc.name, "anthropic") {
				path = "/v1/messages"
			}
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				r.ServeHTTP(w, httptest.NewRequest("POST", path, strings.NewReader(tc.body)))
				if w.Code != 200 {
					b.Fatal(w.Code, w.Body.String())
				}
			}
		})
	}
}
