package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sync"

	"github.com/nemoclave/nemoclave/host/plugins"
	"github.com/nemoclave/nemoclave/policy"
)

// pluginPool shares plugin processes between runs. Two plugin blocks —
// of one blueprint's sandboxes or of different runs — that resolve to the
// same launch (source, labels, configuration with its credentials,
// confinement, pin, timeouts, and the same shared processes wired to
// them) use one process, counted by reference and stopped when the last
// run using it ends. A plugin keeps each caller's data apart by the call
// context it already gets (sandbox and agent on every call), which is how
// a plugin used by a multi-sandbox blueprint has always worked; and two
// launches of one plugin block share a state directory anyway
// (<state>/<kind>.<name>), where one process holding a store's in-memory
// index is more correct than two.
//
// Ten idle sandboxes of one blueprint cost one set of plugin processes
// instead of ten.
//
// Every process, pooled or not, logs through a pluginLogFanout to the
// plugin logs of the sandboxes holding it (pluginlogs.go).
type pluginPool struct {
	files *pluginLogFiles

	mu    sync.Mutex
	byKey map[string]*pooled
	bySup map[*plugins.Supervised]*pooled
	logs  map[*plugins.Supervised]*pluginLogFanout
}

type pooled struct {
	key  string
	refs int
	sup  *plugins.Supervised
	err  error
	logs *pluginLogFanout
	done chan struct{} // closed once the start finished (sup or err set)
}

func newPluginPool(files *pluginLogFiles) *pluginPool {
	return &pluginPool{files: files, byKey: map[string]*pooled{}, bySup: map[*plugins.Supervised]*pooled{},
		logs: map[*plugins.Supervised]*pluginLogFanout{}}
}

// launchKey names what a spec would launch. Wired targets are pooled
// processes themselves, so they enter the key by theirs.
func (p *pluginPool) launchKey(spec plugins.Spec, egress []policy.Endpoint, fetchFor []string) (string, bool) {
	p.mu.Lock()
	wires := make([][2]string, 0, len(spec.Wires))
	for _, w := range spec.Wires {
		e := p.bySup[w.Target]
		if e == nil {
			p.mu.Unlock()
			return "", false // a target outside the pool: do not share
		}
		wires = append(wires, [2]string{w.Attribute, e.key})
	}
	p.mu.Unlock()
	// The per-plugin egress listener is made for each launch from the
	// labels, the endpoints and the sandboxes it fetches for, which the
	// key holds: a process is shared only between launches whose egress
	// policy is the same.
	var access any
	if spec.Access != nil {
		a := *spec.Access
		a.Egress = nil
		access = a
	}
	b, err := json.Marshal(struct {
		Source, Kind, Name, StateDir string
		Config                       json.RawMessage
		Env                          map[string]string
		Access                       any
		Unconfined                   bool
		CallTimeout                  int64
		Pin                          *plugins.Pin
		Reattach                     any
		Wires                        [][2]string
		Egress                       []policy.Endpoint
		FetchFor                     []string
	}{spec.Source, string(spec.Kind), spec.Name, spec.StateDir, spec.Config, spec.Env, access,
		spec.Unconfined, int64(spec.CallTimeout), spec.Pin, spec.Reattach, wires, egress, fetchFor})
	if err != nil {
		return "", false
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), true
}

// acquire returns the running process for spec, starting it with start
// when no run holds one; start launches with spec.Logger set to the
// process's log fanout. holders are the sandboxes of the acquiring run:
// the process's lines go to their plugin logs until close or dropLogs.
// Concurrent runs asking for one key wait for a single start. A failed
// start is not cached.
func (p *pluginPool) acquire(ctx context.Context, spec plugins.Spec, egress []policy.Endpoint, fetchFor []string, holders []string, start func(plugins.Spec) (*plugins.Supervised, error)) (*plugins.Supervised, error) {
	key, ok := p.launchKey(spec, egress, fetchFor)
	if !ok {
		logs := newPluginLogFanout(p.files)
		logs.hold(holders)
		spec.Logger = logs.logger()
		sup, err := start(spec)
		if err == nil {
			p.mu.Lock()
			p.logs[sup] = logs
			p.mu.Unlock()
		}
		return sup, err
	}
	for {
		p.mu.Lock()
		e := p.byKey[key]
		if e == nil {
			e = &pooled{key: key, refs: 1, done: make(chan struct{}), logs: newPluginLogFanout(p.files)}
			e.logs.hold(holders)
			p.byKey[key] = e
			p.mu.Unlock()
			spec.Logger = e.logs.logger()
			sup, err := start(spec)
			p.mu.Lock()
			e.sup, e.err = sup, err
			if err != nil {
				delete(p.byKey, key)
			} else {
				p.bySup[sup] = e
				p.logs[sup] = e.logs
			}
			close(e.done)
			p.mu.Unlock()
			return sup, err
		}
		e.refs++
		p.mu.Unlock()
		select {
		case <-e.done:
		case <-ctx.Done():
			p.release(e, nil)
			return nil, ctx.Err()
		}
		if e.err == nil {
			e.logs.hold(holders)
			return e.sup, nil
		}
		// The start we waited for failed: try our own.
		p.mu.Lock()
		e.refs--
		p.mu.Unlock()
	}
}

// dropLogs stops sending the plugins' lines to the holders' logs.
func (p *pluginPool) dropLogs(sups []*plugins.Supervised, holders []string) {
	for _, s := range sups {
		p.mu.Lock()
		logs := p.logs[s]
		p.mu.Unlock()
		if logs != nil {
			logs.drop(holders)
		}
	}
}

// close releases a run's hold on each of its plugins (its sandboxes are
// holders); a process no run holds any more is stopped, concurrently
// with the others. A process that stops logs its end to the last
// holders; one that runs on stops writing to theirs at once.
func (p *pluginPool) close(sups []*plugins.Supervised, holders []string) {
	var wg sync.WaitGroup
	for _, s := range sups {
		p.mu.Lock()
		e, logs := p.bySup[s], p.logs[s]
		if e == nil {
			delete(p.logs, s)
		}
		p.mu.Unlock()
		if e == nil { // never pooled
			wg.Go(func() {
				s.Close()
				if logs != nil {
					logs.drop(holders)
				}
			})
			continue
		}
		wg.Go(func() { p.release(e, holders) })
	}
	wg.Wait()
}

// release drops one hold on e, by holders (none when a start was waited
// for in vain), and stops the process when it was the last.
func (p *pluginPool) release(e *pooled, holders []string) {
	p.mu.Lock()
	e.refs--
	last := e.refs == 0 && e.sup != nil
	if last {
		delete(p.byKey, e.key)
		delete(p.bySup, e.sup)
		delete(p.logs, e.sup)
	}
	p.mu.Unlock()
	if last {
		e.sup.Close()
	}
	if e.logs != nil {
		e.logs.drop(holders)
	}
}

// running counts the processes the pool holds (for tests and status).
func (p *pluginPool) running() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.bySup)
}
