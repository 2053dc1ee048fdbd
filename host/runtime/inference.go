package runtime

import (
	"context"
	"fmt"

	"github.com/nemoclave/nemoclave/gateway/inference"
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

// InferenceSet points the default alias of running sandboxes at provider
// and model, without a restart.
func (r *Runtime) InferenceSet(ctx context.Context, sandbox, provider, model string) (any, error) {
	runs, err := r.runsFor(sandbox)
	if err != nil {
		return nil, err
	}
	if len(runs) == 0 {
		return nil, fmt.Errorf("no sandbox is running; the new default applies to the next run through config.yaml")
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
