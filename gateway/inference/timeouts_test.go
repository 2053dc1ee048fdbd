package inference

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/sdk/llm"
)

// stalling sends one chunk and then waits for its context: a provider
// that hangs mid-answer.
type stalling struct{ llm.NotSupported }

func (stalling) ChatStream(ctx context.Context, _ *llm.ChatRequest, send func(*llm.ChatChunk) error) error {
	if err := send(&llm.ChatChunk{DeltaText: "partial "}); err != nil {
		return err
	}
	<-ctx.Done()
	return ctx.Err()
}

// TestTotalTimeoutBoundsWholeStream checks timeouts.total ends a stream
// that started in time but never finishes, with an error event that names
// the setting. The stream can end no other way, so the test does not
// depend on timing.
func TestTotalTimeoutBoundsWholeStream(t *testing.T) {
	t.Parallel()
	r, err := New(context.Background(), Config{Sandbox: "sb", Providers: map[string]llm.Provider{"s": stalling{}},
		Routes: Routes{Default: "a", Models: map[string]Route{"a": {Provider: "s", Model: "m", Timeout: time.Minute, Total: time.Second}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	e := &env{url: serve(t, r)}
	for _, tc := range []struct{ path, body string }{
		{"/v1/chat/completions", `{"model":"a","stream":true,"messages":[{"role":"user","content":"hi"}]}`},
		{"/v1/messages", `{"model":"a","stream":true,"max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`},
		{"/v1/responses", `{"model":"a","stream":true,"input":"hi"}`},
	} {
		code, _, body := e.post(t, tc.path, tc.body, nil)
		if code != 200 || !strings.Contains(body, "partial ") || !strings.Contains(body, "timeouts.total") {
			t.Fatalf("%s: %d %s", tc.path, code, body)
		}
	}
	_, _, body := e.post(t, "/v1/responses", `{"model":"a","stream":true,"input":"hi"}`, nil)
	if !strings.Contains(body, `"type":"response.failed"`) || !strings.Contains(body, "event: error") {
		t.Fatalf("responses stream did not end with error + response.failed: %s", body)
	}
}
