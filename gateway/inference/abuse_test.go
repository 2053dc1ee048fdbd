package inference

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/internal/testupstream"
	"github.com/nemoclave/nemoclave/plugins/llm-openai/openaiplugin"
	"github.com/nemoclave/nemoclave/sdk/llm"
	"github.com/nemoclave/nemoclave/sdk/plugin"
)

// abuseLLM is an llm plugin served over a real gRPC connection (see
// plugin.InProcess). Model "hang" streams one chunk and then waits for the
// caller to go away; model "hold" blocks Chat until release is closed;
// every other model answers at once, reporting max_tokens as its output
// usage (the worst case a budget must cover).
type abuseLLM struct {
	plugin.Base
	inflight atomic.Int64
	release  chan struct{}
}

func (*abuseLLM) Info() plugin.Info {
	return plugin.Info{Name: "llm-abuse", Version: "0", Kinds: []plugin.Kind{plugin.KindLLM}}
}

func (*abuseLLM) ListModels(context.Context) ([]llm.Model, error) { return nil, nil }

func (p *abuseLLM) Chat(ctx context.Context, req *llm.ChatRequest) (*llm.ChatResponse, error) {
	p.inflight.Add(1)
	defer p.inflight.Add(-1)
	if req.Model == "hold" {
		select {
		case <-p.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	out := int64(10)
	if req.MaxTokens != nil {
		out = *req.MaxTokens
	}
	// Input is counted the way the gateway estimates it (bytes/4+1), so
	// the test measures the reservation, not estimation error.
	in := int64(1)
	for _, m := range req.Messages {
		in += int64(len(m.Text()) / 4)
	}
	return &llm.ChatResponse{Model: req.Model, FinishReason: "stop", Message: llm.Message{Role: llm.RoleAssistant, Content: []llm.ContentPart{llm.Text("ok")}},
		Usage: llm.Usage{InputTokens: in, OutputTokens: out}}, nil
}

func (p *abuseLLM) ChatStream(ctx context.Context, req *llm.ChatRequest, send func(*llm.ChatChunk) error) error {
	if err := send(&llm.ChatChunk{DeltaText: "first"}); err != nil {
		return err
	}
	if req.Model == "hang" {
		<-ctx.Done()
		return ctx.Err()
	}
	return send(&llm.ChatChunk{FinishReason: "stop", Usage: &llm.Usage{InputTokens: 1, OutputTokens: 1}})
}

func startAbuseLLM(t *testing.T) (*abuseLLM, llm.Provider) {
	t.Helper()
	p := &abuseLLM{release: make(chan struct{})}
	c := plugin.InProcess(t, p)
	if _, err := c.Configure(context.Background(), plugin.ConfigureOptions{}); err != nil {
		t.Fatal(err)
	}
	return p, c.LLM()
}

func abuseRouter(t *testing.T, sandbox string, prov llm.Provider, h *Health, l Limits) (*Router, string) {
	t.Helper()
	r, err := New(context.Background(), Config{
		Sandbox: sandbox, Health: h, Limits: l,
		Routes: Routes{Default: "fast", Models: map[string]Route{
			"fast": {Provider: "plugin.llm.fake", Model: "fast"},
			"hang": {Provider: "plugin.llm.fake", Model: "hang"},
			"hold": {Provider: "plugin.llm.fake", Model: "hold"},
		}},
		Providers: map[string]llm.Provider{"plugin.llm.fake": prov},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r, newTestServer(t, r)
}

func postChat(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestAbuse_R1_BreakerCountsOnlyProviderFailures: one sandbox aborts
// streams mid-way and sends requests too large for the plugin hop, many
// times; the shared provider's breaker stays closed and another sandbox
// is still served.
func TestAbuse_R1_BreakerCountsOnlyProviderFailures(t *testing.T) {
	_, prov := startAbuseLLM(t)
	h := NewHealth(BreakerSettings{FailureThreshold: 2, Cooldown: time.Hour})
	_, attacker := abuseRouter(t, "attacker", prov, h, Limits{})
	_, victim := abuseRouter(t, "victim", prov, h, Limits{})

	for i := 0; i < 6; i++ {
		// Abort a stream after its first chunk.
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, attacker+"/v1/chat/completions",
			strings.NewReader(`{"model":"hang","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64)
		if _, err := resp.Body.Read(buf); err != nil {
			t.Fatalf("no first chunk: %v", err)
		}
		cancel()
		resp.Body.Close()
	}
	// 5 MiB: above gRPC's default 4 MiB on the in-process plugin hop,
	// below the router's own limit.
	big := `{"model":"fast","messages":[{"role":"user","content":"` + strings.Repeat("a", 5<<20) + `"}]}`
	for i := 0; i < 4; i++ {
		code, body := postChat(t, attacker, big)
		if code != http.StatusRequestEntityTooLarge || !strings.Contains(body, "smaller request") {
			t.Fatalf("oversized request: %d %s, want 413 with a clear message (never 429)", code, body)
		}
	}
	// The aborted streams' handlers finish asynchronously; wait until the
	// router has settled every one before judging the breaker.
	deadline := time.Now().Add(30 * time.Second)
	for {
		snap := h.Snapshot(time.Now())
		if len(snap) == 1 && snap[0].State == "closed" && snap[0].ConsecutiveFailures == 0 {
			break
		}
		if time.Now().After(deadline) || (len(snap) == 1 && snap[0].State != "closed") {
			t.Fatalf("breaker after client aborts and oversized requests: %+v", snap)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, body := postChat(t, victim, `{"model":"fast","messages":[{"role":"user","content":"hi"}]}`); code != http.StatusOK {
		t.Fatalf("another sandbox was refused: %d %s", code, body)
	}
	if snap := h.Snapshot(time.Now()); snap[0].State != "closed" || snap[0].ConsecutiveFailures != 0 {
		t.Fatalf("breaker: %+v", snap)
	}
}

// TestAbuse_R3_BudgetReservesBeforeTheCall: 40 concurrent calls against a
// 2000-token budget cannot overshoot it, huge n and max_tokens are
// refused by the route, and the in-flight bound holds.
func TestAbuse_R3_BudgetReservesBeforeTheCall(t *testing.T) {
	p, prov := startAbuseLLM(t)
	r, url := abuseRouter(t, "sb", prov, nil, Limits{Budget: Budget{TokensPerDay: 2000}, RateLimit: RateLimit{Concurrent: 64}})

	var wg sync.WaitGroup
	var served, refused atomic.Int64
	errs := make(chan string, 40)
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, body := postChat(t, url, `{"model":"fast","max_tokens":200,"messages":[{"role":"user","content":"hi"}]}`)
			switch {
			case code == http.StatusOK:
				served.Add(1)
			case code == http.StatusTooManyRequests && strings.Contains(body, "budget_exceeded") && strings.Contains(body, "reserves"):
				refused.Add(1)
			default:
				errs <- fmt.Sprintf("%d %s", code, body)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	st := r.Status().Usage
	if st.TokensToday > 2000 || served.Load() == 0 || refused.Load() == 0 || st.ReservedTokens != 0 {
		t.Fatalf("served %d, refused %d, used %d of 2000 (reserved %d)", served.Load(), refused.Load(), st.TokensToday, st.ReservedTokens)
	}

	for _, tc := range []struct{ body, want string }{
		{`{"model":"fast","n":1000000,"messages":[{"role":"user","content":"hi"}]}`, "exceeds the limit of 8 choices"},
		{`{"model":"fast","max_tokens":99999999,"messages":[{"role":"user","content":"hi"}]}`, "exceeds the limit of 65536"},
	} {
		if code, body := postChat(t, url, tc.body); code != http.StatusBadRequest || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %s, want 400 %q", tc.body, code, body, tc.want)
		}
	}

	// A request without max_tokens gets one that fits what is left.
	r2, url2 := abuseRouter(t, "sb2", prov, nil, Limits{Budget: Budget{TokensPerDay: 300}})
	if code, body := postChat(t, url2, `{"model":"fast","messages":[{"role":"user","content":"hi"}]}`); code != http.StatusOK {
		t.Fatalf("unbounded request: %d %s", code, body)
	}
	if used := r2.Status().Usage.TokensToday; used > 300 {
		t.Fatalf("a request without max_tokens used %d of 300 tokens", used)
	}

	// In-flight bound: two held calls, the third is refused at once.
	_, url3 := abuseRouter(t, "sb3", prov, nil, Limits{RateLimit: RateLimit{Concurrent: 2}})
	var held sync.WaitGroup
	for i := 0; i < 2; i++ {
		held.Add(1)
		go func() {
			defer held.Done()
			postChat(t, url3, `{"model":"hold","max_tokens":1,"messages":[{"role":"user","content":"hi"}]}`)
		}()
	}
	for p.inflight.Load() < 2 {
		time.Sleep(5 * time.Millisecond)
	}
	code, body := postChat(t, url3, `{"model":"fast","max_tokens":1,"messages":[{"role":"user","content":"hi"}]}`)
	close(p.release)
	held.Wait()
	var e struct{ Error struct{ Message string } }
	_ = json.Unmarshal([]byte(body), &e)
	if code != http.StatusTooManyRequests || !strings.Contains(e.Error.Message, "2 inference requests in flight") {
		t.Fatalf("third concurrent call: %d %s", code, body)
	}
}

// TestAbuse_R8_BaseURLSecretsNeverLeave: a provider whose base_url carries
// userinfo and a signed query, unreachable and then echoing its key; the
// agent's answers, the gateway log and the status never show them.
func TestAbuse_R8_BaseURLSecretsNeverLeave(t *testing.T) {
	up := testupstream.Start(t, upstreamKey)
	ctx := context.Background()
	withSecrets := func(base string) string {
		u, _ := url.Parse(base)
		u.User = url.UserPassword("gwuser", "hunter2hunter2")
		u.RawQuery = "sig=s3cr3tsig0001"
		return u.String()
	}
	logs := &syncBuffer{}
	provs := map[string]llm.Provider{}
	for name, base := range map[string]string{"good": up + "/v1", "down": "http://127.0.0.1:1/v1"} {
		c := plugin.InProcess(t, openaiplugin.New())
		cfg, _ := json.Marshal(map[string]any{"base_url": withSecrets(base), "api_key": upstreamKey, "timeout": "30s"})
		if diags, err := c.Configure(ctx, plugin.ConfigureOptions{Config: cfg}); err != nil || len(diags) > 0 {
			t.Fatalf("configure: %v %v", err, diags)
		}
		provs[name] = c.LLM()
	}
	r, err := New(ctx, Config{Sandbox: "sb", Providers: provs, Logger: slog.New(slog.NewJSONHandler(logs, nil)),
		Routes: Routes{Default: "ok", Models: map[string]Route{
			"ok":   {Provider: "good", Model: "gpt-test"},
			"leak": {Provider: "good", Model: "leak-key"},
			"down": {Provider: "down", Model: "gpt-test"},
		}}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	srv := newTestServer(t, r)
	var seen strings.Builder
	// The signed query still reaches the provider: the call succeeds.
	if code, body := postChat(t, srv, `{"model":"ok","messages":[{"role":"user","content":"hi"}]}`); code != http.StatusOK {
		t.Fatalf("base_url with a query: %d %s", code, body)
	}
	for _, m := range []string{"leak", "down"} {
		code, body := postChat(t, srv, `{"model":"`+m+`","messages":[{"role":"user","content":"hi"}]}`)
		if code == http.StatusOK {
			t.Fatalf("%s: expected a failure", m)
		}
		seen.WriteString(body)
	}
	st, _ := json.Marshal(r.Status())
	seen.Write(st)
	seen.WriteString(logs.String())
	if !strings.Contains(seen.String(), "unreachable") {
		t.Fatalf("the failure does not say which provider failed: %s", seen.String())
	}
	for _, secret := range []string{"hunter2hunter2", "s3cr3tsig0001", "gwuser", upstreamKey, upstreamKey[:12], upstreamKey[len(upstreamKey)-10:]} {
		if strings.Contains(seen.String(), secret) {
			t.Errorf("%q reached the agent, the log or the status:\n%s", secret, seen.String())
		}
	}
}

// TestAbuse_R9_RefusalsAreAudited: budget and rate-limit refusals reach
// the audit hook with the sandbox, endpoint, model and reason.
func TestAbuse_R9_RefusalsAreAudited(t *testing.T) {
	_, prov := startAbuseLLM(t)
	var mu sync.Mutex
	var got []RefusalEvent
	r, err := New(context.Background(), Config{
		Sandbox: "sb", Limits: Limits{Budget: Budget{TokensPerDay: 50}, RateLimit: RateLimit{RequestsPerMinute: 1}},
		Routes:    Routes{Default: "fast", Models: map[string]Route{"fast": {Provider: "p", Model: "fast"}}},
		Providers: map[string]llm.Provider{"p": prov},
		Audit: func(ev RefusalEvent) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, ev)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	url := newTestServer(t, r)
	if code, body := postChat(t, url, `{"model":"fast","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}`); code != http.StatusTooManyRequests {
		t.Fatalf("over budget: %d %s", code, body)
	}
	if code, body := postChat(t, url, `{"model":"fast","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`); code != http.StatusOK {
		t.Fatalf("within budget: %d %s", code, body)
	}
	if code, body := postChat(t, url, `{"model":"fast","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`); code != http.StatusTooManyRequests {
		t.Fatalf("second request in the minute: %d %s", code, body)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0].Reason != "budget" || got[1].Reason != "rate_limit" || got[0].Sandbox != "sb" || got[0].Model != "fast" || got[0].Endpoint != "openai_chat" {
		t.Fatalf("audited refusals: %+v", got)
	}
}
