package inference

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/nemoclave/nemoclave/sdk/embeddings"
	"github.com/nemoclave/nemoclave/sdk/llm"
)

// Config builds one sandbox's Router.
type Config struct {
	// Sandbox names the sandbox whose listener this router serves. It is
	// the only identity the router knows; requests cannot change it.
	Sandbox string
	// Routes are the sandbox's aliases; see Routes.
	Routes Routes
	// Providers and Embedders are the loaded plugins by name (the names
	// Route.Provider and EmbeddingsRoute.Embedder use).
	Providers map[string]llm.Provider
	Embedders map[string]embeddings.Embedder
	// Limits are the sandbox's budget and rate limits.
	Limits Limits
	// Usage persists usage; nil keeps it in memory only (budgets then
	// restart from zero with the router).
	Usage UsageStore
	// Prices prices calls for cost budgets; nil uses DefaultPrices.
	Prices PriceTable
	// Health is the provider circuit state shared between sandboxes; nil
	// gives this router its own.
	Health *Health
	// Metrics is shared between routers (see NewMetrics); nil disables.
	Metrics *Metrics
	// TracerProvider receives one span per request; nil disables.
	TracerProvider trace.TracerProvider
	// Logger receives one line per failure; request content and
	// credentials never appear in it. Nil discards.
	Logger *slog.Logger
	// Redact scrubs known secret values from any text that leaves the
	// gateway (error messages, answers). The host passes its credential
	// store's redactor; nil leaves text as is (the plugins already redact
	// their own key).
	Redact func(string) string
	// MaxBodyBytes bounds a request body; zero means DefaultMaxBodyBytes.
	// The plugin hop accepts messages of this size plus
	// plugin.MessageOverhead, so a body the router accepts also fits there.
	MaxBodyBytes int64
	// Audit receives one event per refused request (budget, rate limit);
	// nil drops them.
	Audit func(RefusalEvent)
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// Router serves one sandbox's inference endpoints. It is safe for
// concurrent use; routes, providers and limits can be swapped at runtime.
type Router struct {
	sandbox string
	state   atomic.Pointer[state]
	meter   *meter
	writer  *usageWriter
	store   UsageStore
	prices  PriceTable
	health  *Health
	metrics *Metrics
	tracer  trace.Tracer
	log     *slog.Logger
	redact  func(string) string
	maxBody int64
	audit   func(RefusalEvent)
	now     func() time.Time
	mux     *http.ServeMux
	// noForward remembers providers that do not pass this dialect through.
	noForward noForward
	// responses are the stored Responses API answers.
	responses responseStore

	closeOnce sync.Once
}

// state is what SetRoutes and SetProviders swap atomically.
type state struct {
	routes    Routes
	providers map[string]llm.Provider
	embedders map[string]embeddings.Embedder
}

// New builds a Router. With a UsageStore it resumes today's and this
// month's totals so budgets survive restarts.
func New(ctx context.Context, cfg Config) (*Router, error) {
	if cfg.Sandbox == "" {
		return nil, fmt.Errorf("inference router: Config.Sandbox is required (the listener's sandbox name)")
	}
	if err := cfg.Routes.Validate(cfg.Providers); err != nil {
		return nil, fmt.Errorf("inference routes for sandbox %q: %w", cfg.Sandbox, err)
	}
	r := &Router{
		sandbox: cfg.Sandbox, store: cfg.Usage, prices: cfg.Prices, health: cfg.Health, metrics: cfg.Metrics,
		tracer: tracerOf(cfg.TracerProvider), log: cfg.Logger, redact: cfg.Redact, maxBody: cfg.MaxBodyBytes, audit: cfg.Audit, now: cfg.Now,
	}
	if r.prices == nil {
		r.prices = DefaultPrices()
	}
	if r.health == nil {
		r.health = NewHealth(BreakerSettings{})
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.redact == nil {
		r.redact = func(s string) string { return s }
	}
	if r.maxBody == 0 {
		r.maxBody = DefaultMaxBodyBytes
	}
	if r.now == nil {
		r.now = time.Now
	}
	r.state.Store(&state{routes: cfg.Routes, providers: cfg.Providers, embedders: cfg.Embedders})
	now := r.now()
	r.meter = newMeter(cfg.Limits, now)
	if r.store != nil {
		if err := r.resume(ctx, now); err != nil {
			return nil, err
		}
		r.writer = newUsageWriter(r.store, func(err error) {
			r.log.Error("inference usage not recorded", "sandbox", r.sandbox, "error", err)
		})
	}
	r.mux = http.NewServeMux()
	r.mux.HandleFunc("POST /v1/chat/completions", r.serveOpenAIChat)
	r.mux.HandleFunc("POST /v1/embeddings", r.serveEmbeddings)
	r.mux.HandleFunc("GET /v1/models", r.serveModels)
	r.mux.HandleFunc("POST /v1/messages", r.serveAnthropicMessages)
	r.mux.HandleFunc("POST /v1/responses", r.serveResponses)
	r.mux.HandleFunc("GET /v1/responses/{id}", r.serveGetResponse)
	r.mux.HandleFunc("DELETE /v1/responses/{id}", r.serveDeleteResponse)
	r.mux.HandleFunc("GET /v1/models/{id}", r.serveModel)
	r.mux.HandleFunc("POST /v1/messages/count_tokens", r.serveCountTokens)
	r.mux.HandleFunc("/", r.notFound)
	return r, nil
}

func (r *Router) resume(ctx context.Context, now time.Time) error {
	utc := now.UTC()
	monthStart := time.Date(utc.Year(), utc.Month(), 1, 0, 0, 0, 0, time.UTC)
	dayStart := time.Date(utc.Year(), utc.Month(), utc.Day(), 0, 0, 0, 0, time.UTC)
	sum := func(since time.Time) (int64, float64, error) {
		totals, err := r.store.Totals(ctx, UsageQuery{Sandbox: r.sandbox, Since: since})
		if err != nil {
			return 0, 0, fmt.Errorf("resume usage for sandbox %q: %w", r.sandbox, err)
		}
		var tok int64
		var cost float64
		for _, t := range totals {
			tok += t.InputTokens + t.OutputTokens
			cost += t.CostUSD
		}
		return tok, cost, nil
	}
	mt, mc, err := sum(monthStart)
	if err != nil {
		return err
	}
	dt, dc, err := sum(dayStart)
	if err != nil {
		return err
	}
	r.meter.seed(dt, mt, dc, mc)
	return nil
}

// ServeHTTP serves the inference endpoints. Unknown paths answer 404 in
// the OpenAI error shape.
func (r *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mux.ServeHTTP(w, req)
}

// SetRoutes replaces the sandbox's routes for new requests; requests in
// flight finish on the routes they started with.
func (r *Router) SetRoutes(routes Routes) error {
	for {
		old := r.state.Load()
		if err := routes.Validate(old.providers); err != nil {
			return fmt.Errorf("inference routes for sandbox %q: %w", r.sandbox, err)
		}
		if r.state.CompareAndSwap(old, &state{routes: routes, providers: old.providers, embedders: old.embedders}) {
			return nil
		}
	}
}

// SetProviders replaces the provider and embedder sets (a plugin was
// restarted or added). Routes must still resolve.
func (r *Router) SetProviders(providers map[string]llm.Provider, embedders map[string]embeddings.Embedder) error {
	for {
		old := r.state.Load()
		if err := old.routes.Validate(providers); err != nil {
			return fmt.Errorf("providers for sandbox %q: %w", r.sandbox, err)
		}
		if r.state.CompareAndSwap(old, &state{routes: old.routes, providers: providers, embedders: embedders}) {
			return nil
		}
	}
}

// SetDefault points the default alias at provider and model, keeping its
// parameters and fallback chain; without a default alias it creates one
// named "default". This is what `nemoclave inference set` does to a
// running sandbox.
func (r *Router) SetDefault(provider, model string) error {
	if provider == "" || model == "" {
		return fmt.Errorf("inference set needs both a provider and a model")
	}
	old := r.state.Load()
	routes := old.routes
	models := make(map[string]Route, len(routes.Models)+1)
	for k, v := range routes.Models {
		models[k] = v
	}
	alias := routes.Default
	if alias == "" {
		alias = "default"
	}
	rt := models[alias]
	rt.Provider, rt.Model = provider, model
	models[alias] = rt
	routes.Models, routes.Default = models, alias
	return r.SetRoutes(routes)
}

// SetLimits replaces the budget and rate limits; usage so far is kept.
func (r *Router) SetLimits(l Limits) { r.meter.setLimits(l) }

// Routes returns the current routes.
func (r *Router) Routes() Routes { return r.state.Load().routes }

// Status is a router's state for `nemoclave inference status`.
type Status struct {
	Sandbox   string           `json:"sandbox"`
	Default   string           `json:"default"`
	Routes    []RouteStatus    `json:"routes"`
	Providers []ProviderHealth `json:"providers"`
	Usage     BudgetStatus     `json:"usage"`
}

// RouteStatus is one alias.
type RouteStatus struct {
	Alias    string   `json:"alias"`
	Provider string   `json:"provider"`
	Model    string   `json:"model"`
	Fallback []string `json:"fallback,omitempty"`
}

// Status reports routes, provider health and usage against the budget.
func (r *Router) Status() Status {
	st := r.state.Load()
	now := r.now()
	out := Status{Sandbox: r.sandbox, Default: st.routes.Default, Providers: r.health.Snapshot(now), Usage: r.meter.status(now)}
	for _, a := range st.routes.aliases() {
		rt := st.routes.Models[a]
		out.Routes = append(out.Routes, RouteStatus{Alias: a, Provider: rt.Provider, Model: rt.Model, Fallback: rt.Fallback})
	}
	return out
}

// Close flushes pending usage to the store. It does not close the store,
// which the caller owns.
func (r *Router) Close() {
	if r.writer != nil {
		r.closeOnce.Do(r.writer.close)
	}
}

// record meters a finished call: budgets, rate limits and the store,
// and logs it, so `nemoclave logs <sandbox> --source gateway` shows every
// model call an agent made, not only the failed ones.
func (r *Router) record(rec UsageRecord) {
	rec.Sandbox = r.sandbox
	rec.CostUSD = r.prices.Cost(rec.Model, rec.InputTokens, rec.CachedInputTokens, rec.OutputTokens)
	r.log.Info("inference call", "sandbox", r.sandbox, "operation", rec.Operation, "alias", rec.Alias, "provider", rec.Provider, "model", rec.Model,
		"input_tokens", rec.InputTokens, "output_tokens", rec.OutputTokens, "cost_usd", rec.CostUSD, "estimated", rec.Estimated)
	r.meter.charge(rec.Time, rec.InputTokens+rec.OutputTokens, rec.CostUSD)
	if r.writer != nil {
		r.writer.add(rec)
	}
}
