package runtime

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/nemoclave/nemoclave/gateway/inference"
	pb "github.com/nemoclave/nemoclave/host/api/daemonpb"
	"github.com/nemoclave/nemoclave/host/config"
	"github.com/nemoclave/nemoclave/host/state"
	"github.com/nemoclave/nemoclave/internal/secrets"
	"github.com/nemoclave/nemoclave/sdk/llm"
)

func (r *Runtime) runsFor(sandbox string) ([]*run, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if sandbox != "" {
		rn := r.runs[sandbox]
		if rn == nil || rn.stopping.Load() {
			return nil, fmt.Errorf("sandbox %q is not running under this daemon", sandbox)
		}
		return []*run{rn}, nil
	}
	out := make([]*run, 0, len(r.runs))
	for _, name := range sortedKeys(r.runs) {
		if rn := r.runs[name]; !rn.stopping.Load() { // its plugins are going
			out = append(out, rn)
		}
	}
	return out, nil
}

// InferenceStatus answers `nemoclave inference status`: config.yaml's
// default, the live routes, provider health and budget use of the running
// sandboxes (of sandbox, or all), and the usage recorded since the start
// of the UTC day and month.
func (r *Runtime) InferenceStatus(ctx context.Context, sandbox string) (*pb.InferenceStatusResponse, error) {
	runs, err := r.runsFor(sandbox)
	if err != nil {
		return nil, err
	}
	cfg, err := config.Load(r.opts.Home)
	if err != nil {
		return nil, err
	}
	out := &pb.InferenceStatusResponse{
		Default:   &pb.InferenceDefault{Provider: cfg.Inference.Provider, Model: cfg.Inference.Model},
		Live:      []*pb.SandboxInference{},
		UsageFile: filepath.Join(r.opts.Home, inference.UsageFileName),
	}
	if state.IsPostgresURL(r.opts.StateURL) {
		// Usage is where the state is: every replica's sandboxes.
		out.UsageFile = secrets.ShowURL(r.opts.StateURL)
	}
	for _, rn := range runs {
		out.Live = append(out.Live, inferenceMessage(rn.name, rn.router.Status()))
	}
	if len(runs) == 0 {
		out.Notes = append(out.Notes, "no sandbox is running, so no live routes or provider health are shown (they exist while a sandbox runs: nemoclave run)")
	}
	now := time.Now().UTC()
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	for _, q := range []struct {
		since time.Time
		into  *[]*pb.UsageTotal
	}{{day, &out.UsageToday}, {month, &out.UsageMonth}} {
		totals, err := r.usage.Totals(ctx, inference.UsageQuery{Sandbox: sandbox, Since: q.since})
		if err != nil {
			return nil, fmt.Errorf("read usage from %s: %w", out.UsageFile, err)
		}
		*q.into = []*pb.UsageTotal{}
		for _, u := range totals {
			*q.into = append(*q.into, &pb.UsageTotal{Sandbox: u.Sandbox, Alias: u.Alias, Provider: u.Provider, Model: u.Model, Requests: u.Requests,
				InputTokens: u.InputTokens, OutputTokens: u.OutputTokens, CachedInputTokens: u.CachedInputTokens, CostUsd: u.CostUSD})
		}
	}
	return out, nil
}

// inferenceMessage is the API's form of a router's status.
func inferenceMessage(name string, st inference.Status) *pb.SandboxInference {
	out := &pb.SandboxInference{Sandbox: name, Default: st.Default}
	for _, rt := range st.Routes {
		out.Routes = append(out.Routes, &pb.Route{Alias: rt.Alias, Provider: rt.Provider, Model: rt.Model, Fallback: rt.Fallback})
	}
	for _, p := range st.Providers {
		h := &pb.ProviderHealth{Provider: p.Provider, State: p.State, ConsecutiveFailures: int32(p.ConsecutiveFailures), LastError: p.LastError}
		if !p.OpenUntil.IsZero() {
			h.OpenUntil = timestamppb.New(p.OpenUntil)
		}
		if !p.LastSuccess.IsZero() {
			h.LastSuccess = timestamppb.New(p.LastSuccess)
		}
		out.Providers = append(out.Providers, h)
	}
	u := st.Usage
	out.Usage = &pb.BudgetStatus{
		Budget: &pb.Budget{TokensPerDay: u.Budget.TokensPerDay, TokensPerMonth: u.Budget.TokensPerMonth,
			CostPerDayUsd: u.Budget.CostPerDayUSD, CostPerMonthUsd: u.Budget.CostPerMonthUSD},
		TokensToday: u.TokensToday, TokensMonth: u.TokensMonth, CostTodayUsd: u.CostTodayUSD, CostMonthUsd: u.CostMonthUSD,
		RateLimit: &pb.RateLimit{RequestsPerMinute: int32(u.RateLimit.RequestsPerMinute), TokensPerMinute: int32(u.RateLimit.TokensPerMinute),
			Concurrent: int32(u.RateLimit.Concurrent)},
		RequestsAvailable: u.RequestsBucket, ReservedTokens: u.ReservedTokens, InFlight: int32(u.InFlight),
	}
	return out
}

// ProviderAddress turns a provider name as a person types it into the
// router's key: `main` and `llm.main` are `plugin.llm.main`, the way the
// blueprint writes the reference.
func ProviderAddress(name string) string {
	switch {
	case strings.HasPrefix(name, "plugin."):
		return name
	case strings.HasPrefix(name, "llm."):
		return "plugin." + name
	default:
		return "plugin.llm." + name
	}
}

// InferenceSet points the default alias of running sandboxes at provider
// and model, without a restart. The provider must be one of the sandbox's
// llm plugins and the model one it lists, so a typo fails here with the
// choices instead of on the agent's next request.
func (r *Runtime) InferenceSet(ctx context.Context, sandbox, provider, model string) (*pb.InferenceSetResponse, error) {
	runs, err := r.runsFor(sandbox)
	if err != nil {
		return nil, err
	}
	if len(runs) == 0 {
		return nil, fmt.Errorf("no sandbox is running; the new default applies to the next run through config.yaml")
	}
	provider = ProviderAddress(provider)
	for _, rn := range runs {
		if err := checkProviderModel(ctx, rn, provider, model); err != nil {
			return nil, err
		}
	}
	var changed []string
	for _, rn := range runs {
		if err := rn.router.SetDefault(provider, model); err != nil {
			return nil, fmt.Errorf("sandbox %s: %w", rn.name, err)
		}
		changed = append(changed, rn.name)
	}
	return &pb.InferenceSetResponse{Sandboxes: changed, Provider: provider, Model: model}, nil
}

// checkProviderModel asks the sandbox's provider plugin for its models.
func checkProviderModel(ctx context.Context, rn *run, provider, model string) error {
	llms, _ := rn.plugins.providers()
	p, ok := llms[provider]
	if !ok {
		names := make([]string, 0, len(llms))
		for k := range llms {
			names = append(names, strings.TrimPrefix(k, "plugin.llm."))
		}
		sort.Strings(names)
		return fmt.Errorf("sandbox %s has no llm provider %q; its providers are: %s (the names of its plugin \"llm\" blocks)",
			rn.name, strings.TrimPrefix(provider, "plugin.llm."), strings.Join(names, ", "))
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	models, err := p.ListModels(ctx)
	if err != nil {
		return fmt.Errorf("sandbox %s: provider %s could not list its models, so %q cannot be checked: %w (check the provider with nemoclave inference status)",
			rn.name, provider, model, err)
	}
	if slices.ContainsFunc(models, func(m llm.Model) bool { return m.ID == model }) {
		return nil
	}
	ids := make([]string, 0, len(models))
	for _, m := range models {
		ids = append(ids, m.ID)
	}
	sort.Strings(ids)
	if len(ids) > 20 {
		ids = append(ids[:20], fmt.Sprintf("… %d more", len(ids)-20))
	}
	return fmt.Errorf("provider %s of sandbox %s does not list model %q; it lists: %s", provider, rn.name, model, strings.Join(ids, ", "))
}

// applyConfigDefault points the blueprint's default alias at config.yaml's
// inference default (what `nemoclave inference set` without --sandbox
// writes) when the run loads that provider; a blueprint without it keeps
// its own routes.
func applyConfigDefault(home string, routes *inference.Routes, llms map[string]llm.Provider, log *slog.Logger) {
	cfg, err := config.Load(home)
	if err != nil || cfg.Inference.Provider == "" || cfg.Inference.Model == "" {
		return
	}
	provider := ProviderAddress(cfg.Inference.Provider)
	if _, ok := llms[provider]; !ok {
		return
	}
	alias := routes.Default
	if alias == "" {
		alias = "default"
	}
	rt := routes.Models[alias]
	if rt.Provider == provider && rt.Model == cfg.Inference.Model {
		return
	}
	models := make(map[string]inference.Route, len(routes.Models)+1)
	for k, v := range routes.Models {
		models[k] = v
	}
	rt.Provider, rt.Model = provider, cfg.Inference.Model
	models[alias] = rt
	routes.Models, routes.Default = models, alias
	log.Info("default model from config.yaml (nemoclave inference set)", "alias", alias, "provider", provider, "model", rt.Model)
}
