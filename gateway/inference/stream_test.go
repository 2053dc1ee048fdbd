package inference

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/sdk/llm"
)

// gated sends one chunk, then waits for the test to say the agent has
// received it before sending the rest: if the gateway buffered events,
// the agent would never see the first one and the test would fail at its
// guard deadline.
type gated struct {
	llm.NotSupported
	seen     chan struct{}
	canceled chan struct{}
	hold     bool // after the first chunk, wait for cancellation instead
}

func (g *gated) ChatStream(ctx context.Context, _ *llm.ChatRequest, send func(*llm.ChatChunk) error) error {
	if err := send(&llm.ChatChunk{ID: "s1", DeltaText: "first "}); err != nil {
		return err
	}
	if g.hold {
		<-ctx.Done()
		close(g.canceled)
		return ctx.Err()
	}
	select {
	case <-g.seen:
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := send(&llm.ChatChunk{DeltaText: "second"}); err != nil {
		return err
	}
	return send(&llm.ChatChunk{FinishReason: llm.FinishStop, Usage: &llm.Usage{InputTokens: 3, OutputTokens: 2}})
}

func gatedRouter(t *testing.T, g *gated, limits Limits) string {
	t.Helper()
	r, err := New(context.Background(), Config{Sandbox: "sb", Providers: map[string]llm.Provider{"g": g}, Limits: limits,
		Routes: Routes{Default: "a", Models: map[string]Route{"a": {Provider: "g", Model: "m"}}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return serve(t, r)
}

func TestStreamIsFlushedEventByEvent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ path, body, first, second string }{
		{"/v1/chat/completions", `{"model":"a","stream":true,"messages":[{"role":"user","content":"hi"}]}`, `"content":"first "`, `"content":"second"`},
		{"/v1/messages", `{"model":"a","stream":true,"max_tokens":9,"messages":[{"role":"user","content":"hi"}]}`, `"text":"first "`, `"text":"second"`},
	} {
		g := &gated{seen: make(chan struct{})}
		url := gatedRouter(t, g, Limits{})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // guard, not a measurement
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+tc.path, strings.NewReader(tc.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(resp.Body)
		var sawFirst, sawSecond bool
		for sc.Scan() {
			line := sc.Text()
			if !sawFirst && strings.Contains(line, tc.first) {
				sawFirst = true
				close(g.seen)
			}
			if strings.Contains(line, tc.second) {
				if !sawFirst {
					t.Fatalf("%s: second event before the first", tc.path)
				}
				sawSecond = true
			}
		}
		resp.Body.Close()
		cancel()
		if !sawFirst || !sawSecond {
			t.Fatalf("%s: first=%v second=%v (err %v): events were buffered", tc.path, sawFirst, sawSecond, sc.Err())
		}
	}
}

func TestClientGoneCancelsProvider(t *testing.T) {
	t.Parallel()
	g := &gated{hold: true, canceled: make(chan struct{})}
	url := gatedRouter(t, g, Limits{})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/chat/completions", strings.NewReader(`{"model":"a","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() && !strings.Contains(sc.Text(), "first") {
	}
	cancel()
	resp.Body.Close()
	select {
	case <-g.canceled:
	case <-time.After(30 * time.Second): // guard
		t.Fatal("the provider was not cancelled when the agent went away")
	}
}

func TestTokensPerMinuteLimit(t *testing.T) {
	t.Parallel()
	m := newMeter(Limits{RateLimit: RateLimit{TokensPerMinute: 100}}, time.Unix(0, 0))
	now := time.Unix(10, 0)
	if ref := m.admit(now, reservation{}); ref != nil {
		t.Fatal(ref.message)
	}
	m.charge(now, 150, 0) // overdraws the minute
	ref := m.admit(now, reservation{})
	if ref == nil || ref.reason != "rate_limit" || !strings.Contains(ref.message, "100 tokens per minute") || ref.retryAfter <= 0 {
		t.Fatalf("%+v", ref)
	}
	if ref := m.admit(now.Add(time.Minute), reservation{}); ref != nil {
		t.Fatalf("the bucket refills within a minute: %s", ref.message)
	}
}

func TestBudgetResetsAtUTCMidnight(t *testing.T) {
	t.Parallel()
	day := time.Date(2026, 11, 26, 23, 0, 0, 0, time.UTC)
	m := newMeter(Limits{Budget: Budget{TokensPerDay: 10, TokensPerMonth: 15}}, day)
	m.charge(day, 10, 0)
	if ref := m.admit(day, reservation{}); ref == nil || !strings.Contains(ref.message, "2026-11-27T00:00:00Z") {
		t.Fatalf("%+v", ref)
	}
	next := day.Add(2 * time.Hour)
	if ref := m.admit(next, reservation{}); ref != nil {
		t.Fatalf("new day: %s", ref.message)
	}
	m.charge(next, 5, 0)
	if ref := m.admit(next, reservation{}); ref == nil || !strings.Contains(ref.message, "monthly token budget") {
		t.Fatalf("%+v", ref)
	}
}
