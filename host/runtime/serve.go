package runtime

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nemoclave/nemoclave/gateway/inference"
	"github.com/nemoclave/nemoclave/host/daemon"
	"github.com/nemoclave/nemoclave/sandbox"
)

// reattacher is a driver whose running sandboxes a daemon can serve
// without having started them (the kubernetes driver): after its own
// restart, or for another replica.
type reattacher interface {
	Reattach(ctx context.Context, name string) (*sandbox.Started, error)
	Detach(name string)
}

// ServeRunning makes this daemon serve the gateway (inference, agent API,
// egress) for the running sandboxes of the blueprint in req that another
// daemon started: the replica that leads, or this replica before it
// restarted. It evaluates the blueprint as Run does, launches its plugins
// and configures the gateway from it, with the latest policy revision the
// state holds, and routes each sandbox's current pod to it; nothing is
// created, and the sandboxes' records and lifecycle stay with the daemon
// that runs them. names limits it to those sandboxes (nil: every agent's).
// A sandbox this daemon runs itself is skipped; one it already serves is
// served again from the new evaluation. It returns the sandboxes it now
// serves.
func (r *Runtime) ServeRunning(ctx context.Context, req daemon.RunRequest, names []string) ([]string, error) {
	bp, err := r.evaluate(ctx, req)
	if err != nil {
		return nil, err
	}
	var want []int
	for i, a := range bp.Agents {
		if names != nil && !slices.Contains(names, a.Sandbox) {
			continue
		}
		r.mu.Lock()
		own := r.runs[a.Sandbox] != nil && !r.runs[a.Sandbox].served
		r.mu.Unlock()
		if !own {
			want = append(want, i)
		}
	}
	if len(want) == 0 {
		return nil, nil
	}
	pl, err := r.launchPlugins(ctx, bp, nil)
	if err != nil {
		return nil, fmt.Errorf("launch plugins: %w", err)
	}
	refs := &refcount{n: len(want)}
	health := inference.NewHealth(inference.DefaultBreaker)
	var served []string
	var errs []error
	for _, i := range want {
		a := bp.Agents[i]
		rn := &run{r: r, name: a.Sandbox, agent: a, bp: bp, plugins: pl, pluginRefs: refs, health: health, done: make(chan struct{}), served: true}
		if err := rn.attach(ctx); err != nil {
			rn.stop(context.Background(), "serving failed")
			errs = append(errs, fmt.Errorf("serve sandbox %s: %w", a.Sandbox, err))
			continue
		}
		served = append(served, a.Sandbox)
	}
	return served, errors.Join(errs...)
}

// attach configures the gateway for a sandbox that runs already and
// serves it.
func (rn *run) attach(ctx context.Context) error {
	r := rn.r
	sb := rn.bp.Sandbox(rn.agent.Sandbox)
	if sb == nil {
		return fmt.Errorf("agent %q names sandbox %q, which the blueprint does not declare", rn.agent.Name, rn.agent.Sandbox)
	}
	d, ok := r.drivers[sb.Driver].(reattacher)
	if !ok {
		return fmt.Errorf("driver %q cannot serve a sandbox another daemon started (only the kubernetes driver's outlive their daemon)", sb.Driver)
	}
	rn.driver = r.drivers[sb.Driver]
	// The previous serving of this name goes first: stopping it later
	// would remove the new one's egress policy.
	r.stopServed(rn.name)
	if _, err := rn.configureGateway(); err != nil {
		return err
	}
	// Hot reloads and persisted approvals the running sandbox got since
	// its blueprint was run (shared state: any replica's).
	if rev, err := r.db.LatestPolicy(ctx, rn.name); err == nil && rev.Revision > rn.base.Revision && rev.Policy.Validate() == nil {
		if err := r.egress.SetPolicy(rn.name, rev.Policy); err != nil {
			return err
		}
	}
	r.mu.Lock()
	if cur := r.runs[rn.name]; cur != nil && !cur.served {
		r.mu.Unlock()
		return fmt.Errorf("sandbox %s was started by this daemon meanwhile", rn.name)
	}
	r.runs[rn.name] = rn
	r.mu.Unlock()
	started, err := d.Reattach(ctx, rn.name)
	if err != nil {
		return err
	}
	rn.serve(started)
	rn.log.Info("serving a sandbox another daemon started", "ports", fmt.Sprint(started.Info.Ports))
	go rn.watchExit()
	return nil
}

// StopServing stops serving the named sandboxes that ServeRunning serves
// (their resource is gone, or they left the blueprint); their pods are
// not touched.
func (r *Runtime) StopServing(names ...string) {
	for _, n := range names {
		r.stopServed(n)
	}
}

// Serves reports how this daemon handles a sandbox: "run" (it started
// it), "served" (ServeRunning) or "" (not at all).
func (r *Runtime) Serves(name string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch rn := r.runs[name]; {
	case rn == nil:
		return ""
	case rn.served:
		return "served"
	default:
		return "run"
	}
}

func (r *Runtime) stopServed(name string) {
	r.mu.Lock()
	rn := r.runs[name]
	r.mu.Unlock()
	if rn != nil && rn.served {
		rn.stop(context.Background(), "no longer served here")
		<-rn.done
	}
}
