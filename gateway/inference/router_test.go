package inference

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/nemoclave/nemoclave/sdk/llm"
	"github.com/nemoclave/nemoclave/sdk/status"
)

const chatBody = `{"model":%q,"messages":[{"role":"user","content":"hi"}]}`

func chat(model string) string { return strings.Replace(chatBody, "%q", `"`+model+`"`, 1) }

func TestFallbackRateLimitedRouteToNextAlias(t *testing.T) {
	t.Parallel()
	e := newEnv(t, startProviders(t))
	code, hdr, body := e.post(t, "/v1/chat/completions", chat("flaky"), nil)
	if code != 200 || !strings.Contains(body, "echo: hi") || hdr.Get(RouteHeader) != "claude anthropic" {
		t.Fatalf("%d %v %s", code, hdr, body)
	}
	// Streaming falls back the same way: nothing was sent before the 429.
	code, hdr, body = e.post(t, "/v1/chat/completions", `{"model":"flaky","stream":true,"messages":[{"role":"user","content":"hi"}]}`, nil)
	if code != 200 || !strings.Contains(body, `"content":"echo: hi"`) || hdr.Get(RouteHeader) != "claude anthropic" || !strings.HasSuffix(strings.TrimSpace(body), "data: [DONE]") {
		t.Fatalf("%d %v %s", code, hdr, body)
	}
	if !strings.Contains(e.logs.String(), "rate limited") {
		t.Fatalf("the failed attempt should be logged: %s", e.logs.String())
	}
}

func TestUnknownModelGoesToDefaultUnlessStrict(t *testing.T) {
	t.Parallel()
	p := startProviders(t)
	e := newEnv(t, p)
	code, hdr, _ := e.post(t, "/v1/chat/completions", chat("gpt-4o"), nil)
	if code != 200 || hdr.Get(RouteHeader) != "gpt openai" {
		t.Fatalf("%d %v", code, hdr)
	}
	// A provider model name resolves to its alias.
	if code, hdr, _ = e.post(t, "/v1/chat/completions", chat("claude-test"), nil); code != 200 || hdr.Get(RouteHeader) != "claude anthropic" {
		t.Fatalf("%d %v", code, hdr)
	}
	strict := newEnv(t, p, func(c *Config) { c.Routes.Strict = true })
	code, _, body := strict.post(t, "/v1/chat/completions", chat("gpt-4o"), nil)
	if code != 404 || !strings.Contains(body, "model_not_found") || !strings.Contains(body, "use one of: bad, broken, claude") {
		t.Fatalf("%d %s", code, body)
	}
	code, _, body = strict.post(t, "/v1/messages", `{"model":"gpt-4o","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`, nil)
	if code != 404 || !strings.Contains(body, `"type":"not_found_error"`) {
		t.Fatalf("%d %s", code, body)
	}
}

func TestSetDefaultTakesEffectWithoutRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t, startProviders(t))
	if _, hdr, _ := e.post(t, "/v1/chat/completions", chat(""), nil); hdr.Get(RouteHeader) != "gpt openai" {
		t.Fatalf("before: %v", hdr)
	}
	if err := e.router.SetDefault("anthropic", "claude-test"); err != nil {
		t.Fatal(err)
	}
	code, hdr, _ := e.post(t, "/v1/chat/completions", chat(""), nil)
	if code != 200 || hdr.Get(RouteHeader) != "gpt anthropic" {
		t.Fatalf("after: %d %v", code, hdr)
	}
	if err := e.router.SetDefault("nope", "m"); err == nil || !strings.Contains(err.Error(), `provider "nope" is not loaded`) {
		t.Fatalf("unknown provider: %v", err)
	}
	st := e.router.Status()
	if st.Default != "gpt" || st.Routes[4].Alias != "gpt" || st.Routes[4].Provider != "anthropic" {
		t.Fatalf("status %+v", st.Routes)
	}
}

func TestBudgetAndRateLimitRefuseWith429InEachShape(t *testing.T) {
	t.Parallel()
	p := startProviders(t)
	budget := newEnv(t, p, func(c *Config) { c.Limits.Budget.TokensPerDay = 3 })
	if code, _, body := budget.post(t, "/v1/chat/completions", chat("gpt"), nil); code != 200 {
		t.Fatalf("first call within budget: %d %s", code, body)
	}
	code, hdr, body := budget.post(t, "/v1/chat/completions", chat("gpt"), nil)
	var oe struct {
		Error struct{ Message, Type, Code string }
	}
	if err := json.Unmarshal([]byte(body), &oe); err != nil || code != 429 || oe.Error.Type != "rate_limit_error" || oe.Error.Code != "budget_exceeded" ||
		!strings.Contains(oe.Error.Message, "daily token budget exhausted") || hdr.Get("Retry-After") == "" {
		t.Fatalf("%d %v %s", code, hdr, body)
	}
	code, _, body = budget.post(t, "/v1/messages", `{"model":"claude","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`, nil)
	var ae struct {
		Type  string
		Error struct{ Type, Message string }
	}
	if err := json.Unmarshal([]byte(body), &ae); err != nil || code != 429 || ae.Type != "error" || ae.Error.Type != "rate_limit_error" || !strings.Contains(ae.Error.Message, "budget") {
		t.Fatalf("%d %s", code, body)
	}

	rl := newEnv(t, p, func(c *Config) { c.Limits.RateLimit.RequestsPerMinute = 1 })
	if code, _, _ := rl.post(t, "/v1/chat/completions", chat("gpt"), nil); code != 200 {
		t.Fatalf("first request: %d", code)
	}
	code, _, body = rl.post(t, "/v1/chat/completions", chat("gpt"), nil)
	if code != 429 || !strings.Contains(body, "1 requests per minute") || !strings.Contains(body, "rate_limit_exceeded") {
		t.Fatalf("%d %s", code, body)
	}
	code, _, body = rl.post(t, "/v1/embeddings", `{"model":"embed","input":"x"}`, nil)
	if code != 429 {
		t.Fatalf("embeddings must count against the same limit: %d %s", code, body)
	}
}

func TestCostBudgetUsesPriceTable(t *testing.T) {
	t.Parallel()
	p := startProviders(t)
	e := newEnv(t, p, func(c *Config) {
		c.Limits.Budget.CostPerMonthUSD = 1000
		c.Prices = PriceTable{"gpt-test": {Input: 1e6, Output: 1e6}} // $1 per token
	})
	if code, _, body := e.post(t, "/v1/chat/completions", chat("gpt"), nil); code != 200 {
		t.Fatal(code, body)
	}
	spent := e.router.Status().Usage.CostMonthUSD
	if spent <= 0 {
		t.Fatalf("no cost metered")
	}
	e.router.SetLimits(Limits{Budget: Budget{CostPerMonthUSD: spent}})
	code, _, body := e.post(t, "/v1/chat/completions", chat("gpt"), nil)
	if code != 429 || !strings.Contains(body, "monthly cost budget exhausted") {
		t.Fatalf("%d %s", code, body)
	}
	// A call whose worst case costs more than the budget has left is
	// refused before it runs, not metered after.
	e.router.SetLimits(Limits{Budget: Budget{CostPerMonthUSD: spent + 5}})
	code, _, body = e.post(t, "/v1/chat/completions", `{"model":"gpt","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}`, nil)
	if code != 429 || !strings.Contains(body, "reserves up to") {
		t.Fatalf("%d %s", code, body)
	}
}

func TestUsagePersistsAndBudgetsResume(t *testing.T) {
	t.Parallel()
	p := startProviders(t)
	e := newEnv(t, p)
	for _, b := range []string{chat("gpt"), `{"model":"claude","stream":true,"messages":[{"role":"user","content":"a b c"}]}`} {
		if code, _, body := e.post(t, "/v1/chat/completions", b, nil); code != 200 {
			t.Fatalf("%d %s", code, body)
		}
	}
	if code, _, _ := e.post(t, "/v1/embeddings", `{"input":["one two"]}`, nil); code != 200 {
		t.Fatal(code)
	}
	e.router.Close() // flush
	totals, err := e.store.Totals(context.Background(), UsageQuery{Sandbox: "sb1", Since: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]UsageTotal{}
	for _, tt := range totals {
		got[tt.Alias] = tt
	}
	if g := got["gpt"]; g.Requests != 1 || g.InputTokens != 1 || g.OutputTokens != 2 || g.Model != "gpt-test" || g.Provider != "openai" || g.CostUSD <= 0 {
		t.Fatalf("gpt usage %+v", g)
	}
	if c := got["claude"]; c.Requests != 1 || c.InputTokens != 3 || c.OutputTokens != 4 {
		t.Fatalf("streamed usage %+v", c)
	}
	if em := got["embed"]; em.InputTokens != 2 {
		t.Fatalf("embeddings usage %+v", em)
	}
	// A new router on the same store resumes the day's total.
	r2, err := New(context.Background(), Config{Sandbox: "sb1", Routes: testRoutes(), Providers: map[string]llm.Provider{"openai": p.openai, "anthropic": p.anthropic}, Usage: e.store,
		Limits: Limits{Budget: Budget{TokensPerDay: 12}}})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if st := r2.Status(); st.Usage.TokensToday != 12 {
		t.Fatalf("resumed %+v", st.Usage)
	}
	if ref := r2.meter.admit(time.Now(), reservation{}); ref == nil || ref.reason != "budget" {
		t.Fatalf("budget should be exhausted after resume: %+v", ref)
	}
}

func TestMetricsAndTraces(t *testing.T) {
	t.Parallel()
	e := newEnv(t, startProviders(t))
	e.post(t, "/v1/chat/completions", `{"model":"gpt","stream":true,"messages":[{"role":"user","content":"hi"}]}`, nil)
	e.post(t, "/v1/messages", `{"model":"claude","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`, nil)
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		byName[mf.GetName()] = mf
	}
	for _, n := range []string{"gen_ai_client_token_usage", "gen_ai_client_operation_duration_seconds", "gen_ai_server_time_to_first_token_seconds", "nemoclave_inference_requests_total", "nemoclave_inference_overhead_seconds"} {
		if byName[n] == nil {
			t.Errorf("metric %s missing", n)
		}
	}
	found := false
	for _, m := range byName["gen_ai_client_token_usage"].GetMetric() {
		l := map[string]string{}
		for _, lp := range m.GetLabel() {
			l[lp.GetName()] = lp.GetValue()
		}
		if l["gen_ai_request_model"] == "claude" && l["gen_ai_response_model"] == "claude-test" && l["gen_ai_provider_name"] == "anthropic" &&
			l["gen_ai_operation_name"] == "chat" && l["gen_ai_token_type"] == "output" && l["sandbox"] == "sb1" {
			found = m.GetHistogram().GetSampleSum() > 0
		}
	}
	if !found {
		t.Fatalf("no output token usage for claude: %v", byName["gen_ai_client_token_usage"])
	}
	spans := e.spans.Ended()
	if len(spans) != 2 {
		t.Fatalf("want 2 spans, got %d", len(spans))
	}
	attrs := map[string]string{}
	for _, kv := range spans[1].Attributes() {
		attrs[string(kv.Key)] = kv.Value.String()
	}
	if spans[1].Name() != "chat claude" || attrs["gen_ai.operation.name"] != "chat" || attrs["gen_ai.provider.name"] != "anthropic" ||
		attrs["gen_ai.response.model"] != "claude-test" || attrs["gen_ai.usage.output_tokens"] == "" || attrs["nemoclave.sandbox"] != "sb1" {
		t.Fatalf("span %s %v", spans[1].Name(), attrs)
	}
}

// scripted is an in-process provider for behaviour no real upstream can
// be made to show on demand (failure after the first chunk).
type scripted struct {
	llm.NotSupported
	mu    sync.Mutex
	calls int
}

func (s *scripted) ChatStream(_ context.Context, _ *llm.ChatRequest, send func(*llm.ChatChunk) error) error {
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()
	if err := send(&llm.ChatChunk{DeltaText: "partial "}); err != nil {
		return err
	}
	return status.Errorf(status.Unavailable, "upstream connection reset")
}

func TestNoRetryAfterFirstByte(t *testing.T) {
	t.Parallel()
	s := &scripted{}
	good := &scripted{}
	r, err := New(context.Background(), Config{Sandbox: "sb", Providers: map[string]llm.Provider{"s": s, "good": good},
		Routes: Routes{Default: "a", Models: map[string]Route{"a": {Provider: "s", Model: "m", Retries: 2, Fallback: []string{"b"}}, "b": {Provider: "good", Model: "m"}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	e := &env{url: serve(t, r)}
	code, _, body := e.post(t, "/v1/chat/completions", `{"model":"a","stream":true,"messages":[{"role":"user","content":"hi"}]}`, nil)
	if code != 200 || !strings.Contains(body, `"content":"partial "`) || !strings.Contains(body, "failed mid-stream") || !strings.Contains(body, "upstream connection reset") {
		t.Fatalf("%d %s", code, body)
	}
	if s.calls != 1 || good.calls != 0 {
		t.Fatalf("retried after the first byte: %d %d", s.calls, good.calls)
	}
	code, _, body = e.post(t, "/v1/messages", `{"model":"a","stream":true,"max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`, nil)
	if code != 200 || !strings.Contains(body, "event: error") || !strings.Contains(body, `"type":"overloaded_error"`) {
		t.Fatalf("%d %s", code, body)
	}
}

func TestBreakerOpensAndHalfOpens(t *testing.T) {
	t.Parallel()
	h := NewHealth(BreakerSettings{FailureThreshold: 2, Cooldown: time.Minute})
	now := time.Unix(1000, 0)
	h.failure("p", now, "x")
	if ok, _ := h.allow("p", now); !ok {
		t.Fatal("one failure must not open")
	}
	h.failure("p", now, "x")
	if ok, until := h.allow("p", now.Add(time.Second)); ok || !until.Equal(now.Add(time.Minute)) {
		t.Fatalf("open: %v %v", ok, until)
	}
	if ok, _ := h.allow("p", now.Add(2*time.Minute)); !ok {
		t.Fatal("after cooldown one trial goes through")
	}
	if ok, _ := h.allow("p", now.Add(2*time.Minute)); ok {
		t.Fatal("only one trial while half-open")
	}
	if s := h.Snapshot(now.Add(2 * time.Minute)); s[0].State != "half-open" {
		t.Fatalf("%+v", s)
	}
	h.failure("p", now.Add(2*time.Minute), "again")
	if ok, _ := h.allow("p", now.Add(2*time.Minute+time.Second)); ok {
		t.Fatal("failed trial reopens")
	}
	if ok, _ := h.allow("p", now.Add(4*time.Minute)); !ok {
		t.Fatal("second trial after the next cooldown")
	}
	h.abandon("p") // the agent left mid-trial: another trial may go
	if ok, _ := h.allow("p", now.Add(4*time.Minute)); !ok {
		t.Fatal("an abandoned trial must not block the provider")
	}
	h.success("p", now.Add(5*time.Minute))
	if ok, _ := h.allow("p", now.Add(5*time.Minute)); !ok {
		t.Fatal("success closes")
	}
}

func TestBreakerSkipsOpenProviderAndFallsBack(t *testing.T) {
	t.Parallel()
	e := newEnv(t, startProviders(t), func(c *Config) {
		c.Health = NewHealth(BreakerSettings{FailureThreshold: 1, Cooldown: time.Hour})
	})
	e.post(t, "/v1/chat/completions", chat("broken"), nil) // opens "openai"
	code, hdr, body := e.post(t, "/v1/chat/completions", chat("flaky"), nil)
	if code != 200 || hdr.Get(RouteHeader) != "claude anthropic" {
		t.Fatalf("%d %v %s", code, hdr, body)
	}
	code, _, body = e.post(t, "/v1/chat/completions", chat("gpt"), nil)
	if code != 503 || !strings.Contains(body, "skipped after repeated failures") {
		t.Fatalf("%d %s", code, body)
	}
}

func TestRoutesValidate(t *testing.T) {
	t.Parallel()
	prov := map[string]llm.Provider{"p": &scripted{}}
	for _, tc := range []struct {
		r    Routes
		want string
	}{
		{Routes{}, "no model routes"},
		{Routes{Default: "x", Models: map[string]Route{"a": {Provider: "p", Model: "m"}}}, `default model alias "x" is not declared`},
		{Routes{Models: map[string]Route{"a": {Provider: "q", Model: "m"}}}, `provider "q" is not loaded`},
		{Routes{Models: map[string]Route{"a": {Provider: "p", Model: "m", Fallback: []string{"zz"}}}}, `fallback "zz" is not a declared`},
		{Routes{Models: map[string]Route{"a": {Provider: "p"}}}, "provider and model are both required"},
		{Routes{Models: map[string]Route{"a": {Provider: "p", Model: "m", Parameters: Parameters{Extra: []byte(`[1]`)}}}}, "must be a JSON object"},
	} {
		if err := tc.r.Validate(prov); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.r, err, tc.want)
		}
	}
}

func TestRouteParametersFillUnsetFields(t *testing.T) {
	t.Parallel()
	temp, mt := 0.2, int64(64)
	rt := Route{Model: "m", Parameters: Parameters{Temperature: &temp, MaxTokens: &mt, Extra: []byte(`{"seed":1,"top_k":5}`)}}
	own := 0.9
	out := rt.apply(&llm.ChatRequest{Model: "alias", Temperature: &own, Extra: []byte(`{"top_k":9}`)})
	if out.Model != "m" || *out.Temperature != 0.9 || *out.MaxTokens != 64 || string(out.Extra) != `{"seed":1,"top_k":9}` {
		t.Fatalf("%+v %s", out, out.Extra)
	}
}

func TestRequestErrorsAreClear(t *testing.T) {
	t.Parallel()
	e := newEnv(t, startProviders(t))
	for _, tc := range []struct{ path, body, want string }{
		{"/v1/chat/completions", `{"model":`, "not a valid chat completion request"},
		{"/v1/chat/completions", `{"model":"gpt","messages":[{"role":"robot","content":"x"}]}`, `role \"robot\"`},
		{"/v1/messages", `{"model":"gpt","messages":[{"role":"user","content":[{"type":"video"}]}]}`, `content block type \"video\"`},
		{"/v1/embeddings", `{"model":"embed","input":[[1,2]]}`, "token arrays are not supported"},
	} {
		code, _, body := e.post(t, tc.path, tc.body, nil)
		if code != 400 || !strings.Contains(body, tc.want) {
			t.Errorf("%s %s: %d %s", tc.path, tc.body, code, body)
		}
	}
}

func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	return newTestServer(t, h)
}

func TestUnknownPathAnswersInOpenAIShape(t *testing.T) {
	t.Parallel()
	r, err := New(context.Background(), Config{Sandbox: "sb", Providers: map[string]llm.Provider{"s": &scripted{}}, Routes: Routes{Models: map[string]Route{"a": {Provider: "s", Model: "m"}}}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(serve(t, r) + "/v1/completions")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Error struct{ Message, Type string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != 404 || body.Error.Type != "not_found_error" || !strings.Contains(body.Error.Message, "POST /v1/chat/completions") {
		t.Fatalf("%d %+v %v", resp.StatusCode, body, err)
	}
}
