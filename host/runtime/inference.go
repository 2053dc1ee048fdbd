package runtime

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/nemoclave/nemoclave/gateway/inference"
	"github.com/nemoclave/nemoclave/host/config"
	"github.com/nemoclave/nemoclave/sdk/llm"
)

// InferenceView is `inference status` for one sandbox.
type InferenceView struct {
	Sandbox string           `json:"sandbox"`
	Status  inference.Status `json:"status"`
}

func (r *Runtime) runsFor(sandbox string) ([]*run, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if sandbox != "" {
		rn := r.runs[sandbox]
		if rn == nil {
			return nil, fmt.Errorf("sandbox %q is not running under this daemon", sandbox)
		}
		return []*run{rn}, nil
	}
	out := make([]*run, 0, len(r.runs))
	for _, name := range sortedKeys(r.runs) {
		out = append(out, r.runs[name])
	}
	return out, nil
}

func (r *Runtime) InferenceStatus(ctx context.Context, sandbox string) (any, error) {
	runs, err := r.runsFor(sandbox)
	if err != nil {
		return nil, err
	}
	out := []InferenceView{}
	for _, rn := range runs {
		out = append(out, InferenceView{Sandbox: rn.name, Status: rn.router.Status()})
	}
	return out, nil
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
func (r *Runtime) InferenceSet(ctx context.Context, sandbox, provider, model string) (any, error) {
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
	return map[string]any{"sandboxes": changed, "provider": provider, "model": model}, nil
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
