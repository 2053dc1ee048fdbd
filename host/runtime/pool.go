package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"syscall"
	"time"

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
// With an idle TTL (the daemon's --plugin-idle-ttl), a process whose last
// run ended is kept for that long, and a run with the same launch key
// within it takes the process over instead of launching one (a warm
// `nemoclave run` then launches nothing). Reuse is as safe as sharing
// between concurrent runs, and more is checked first (reuse): the process
// never crashed, its spec still resolves to the binary it runs, the host
// paths it was given are still the same files, and the processes wired to
// it are still the ones it was given. Runs that bound a workspace, fetch
// for agents or attach debug plugins keep nothing idle (keep).
//
// Every process, pooled or not, logs through a pluginLogFanout to the
// plugin logs of the sandboxes holding it (pluginlogs.go).
type pluginPool struct {
	files *pluginLogFiles
	// ttl keeps a process no run holds for reuse; 0 stops it at once.
	ttl time.Duration
	log *slog.Logger

	mu    sync.Mutex
	byKey map[string]*pooled
	// idle are the kept processes no run holds, by key (never also in
	// byKey); bySup and logs still hold them.
	idle   map[string]*pooled
	closed bool
	bySup  map[*plugins.Supervised]*pooled
	logs   map[*plugins.Supervised]*pluginLogFanout
}

type pooled struct {
	key  string
	refs int
	sup  *plugins.Supervised
	err  error
	logs *pluginLogFanout
	done chan struct{} // closed once the start finished (sup or err set)

	// keep: the process may stay idle after its last release (every
	// acquirer allowed it).
	keep bool
	// paths are the identities of the host paths the process was
	// launched with, wires the processes wired to it: both must be
	// unchanged for a reuse.
	paths []pathID
	wires []*plugins.Supervised
	// timer ends an idle period; gen tells a stale timer from the
	// current one.
	timer *time.Timer
	gen   int
}

// pathID is a host path given to a plugin and the file it named at
// launch (device and inode; zero when missing). A plugin box binds the
// file itself, and a plugin keeps its directories open: a workspace
// removed and made again, or a volume mounted over it, is another file,
// which an idle process must not serve. A regular file (a cassette, a CA
// bundle: read at configure) also counts its size, mtime and ctime, so
// one edited in place is read again by a new process; a directory's
// contents are the plugin's live data and do not count.
type pathID struct {
	path               string
	dev, ino           uint64
	size, mtime, ctime int64
}

func pathIDs(spec plugins.Spec) []pathID {
	if spec.Access == nil {
		return nil
	}
	var out []pathID
	for _, p := range append(append([]string(nil), spec.Access.ReadOnly...), spec.Access.ReadWrite...) {
		id := pathID{path: p}
		var st syscall.Stat_t
		if syscall.Stat(p, &st) == nil {
			id.dev, id.ino = st.Dev, st.Ino
			if st.Mode&syscall.S_IFMT == syscall.S_IFREG {
				id.size, id.mtime, id.ctime = st.Size, st.Mtim.Nano(), st.Ctim.Nano()
			}
		}
		out = append(out, id)
	}
	return out
}

func wireTargets(spec plugins.Spec) []*plugins.Supervised {
	out := make([]*plugins.Supervised, 0, len(spec.Wires))
	for _, w := range spec.Wires {
		out = append(out, w.Target)
	}
	return out
}

func newPluginPool(files *pluginLogFiles, ttl time.Duration, log *slog.Logger) *pluginPool {
	return &pluginPool{files: files, ttl: ttl, log: log, byKey: map[string]*pooled{}, idle: map[string]*pooled{},
		bySup: map[*plugins.Supervised]*pooled{}, logs: map[*plugins.Supervised]*pluginLogFanout{}}
}

// reuse says why the idle e must not serve spec (nil: it may).
func (e *pooled) reuse(spec plugins.Spec) error {
	if err := e.sup.Reusable(); err != nil {
		return err
	}
	if !slices.Equal(e.wires, wireTargets(spec)) {
		return errors.New("the plugins wired to it were launched again")
	}
	if now := pathIDs(spec); !slices.Equal(e.paths, now) {
		return fmt.Errorf("a path it was given is another file now (%v, was %v)", now, e.paths)
	}
	return nil
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
// start is not cached. An idle process of the key is taken over when
// reuse allows, else stopped and replaced; keep says whether the process
// may stay idle after this run (see pluginPool).
func (p *pluginPool) acquire(ctx context.Context, spec plugins.Spec, egress []policy.Endpoint, fetchFor []string, holders []string, keep bool, start func(plugins.Spec) (*plugins.Supervised, error)) (*plugins.Supervised, error) {
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
		if e == nil && p.idle[key] != nil {
			// Taken over: it is this key's entry again, and concurrent
			// acquirers wait for the check as for a start.
			e = p.idle[key]
			delete(p.idle, key)
			e.timer.Stop()
			e.timer, e.gen = nil, e.gen+1
			e.refs, e.keep, e.done = 1, keep, make(chan struct{})
			p.byKey[key] = e
			p.mu.Unlock()
			if err := e.reuse(spec); err != nil {
				p.log.Info("idle plugin process not reused; launching another", "plugin", e.sup.Name(), "reason", err)
				p.mu.Lock()
				old := e.sup
				delete(p.bySup, old)
				delete(p.logs, old)
				p.mu.Unlock()
				old.Close()
				p.startEntry(e, spec, holders, start)
				return e.sup, e.err
			}
			p.mu.Lock()
			close(e.done)
			p.mu.Unlock()
			e.logs.hold(holders)
			return e.sup, nil
		}
		if e == nil {
			e = &pooled{key: key, refs: 1, keep: keep, logs: newPluginLogFanout(p.files), done: make(chan struct{})}
			p.byKey[key] = e
			p.mu.Unlock()
			p.startEntry(e, spec, holders, start)
			return e.sup, e.err
		}
		e.refs++
		e.keep = e.keep && keep
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

// startEntry launches e's process, which p.byKey already names, and
// ends e's start (e.done).
func (p *pluginPool) startEntry(e *pooled, spec plugins.Spec, holders []string, start func(plugins.Spec) (*plugins.Supervised, error)) {
	e.logs.hold(holders)
	spec.Logger = e.logs.logger()
	e.paths, e.wires = pathIDs(spec), wireTargets(spec)
	sup, err := start(spec)
	p.mu.Lock()
	e.sup, e.err = sup, err
	if err != nil {
		delete(p.byKey, e.key)
	} else {
		p.bySup[sup] = e
		p.logs[sup] = e.logs
	}
	close(e.done)
	p.mu.Unlock()
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
	last, kept := e.refs == 0 && e.sup != nil, false
	if last && e.keep && p.ttl > 0 && !p.closed && p.idle[e.key] == nil && e.sup.Reusable() == nil {
		// Kept: the next run of the key within ttl takes it over.
		delete(p.byKey, e.key)
		p.idle[e.key] = e
		e.gen++
		gen := e.gen
		e.timer = time.AfterFunc(p.ttl, func() { p.expire(e, gen) })
		last, kept = false, true
	} else if last {
		delete(p.byKey, e.key)
		delete(p.bySup, e.sup)
		delete(p.logs, e.sup)
	}
	p.mu.Unlock()
	if last {
		e.sup.Close()
	}
	if kept {
		// Where "plugin process exited" would be: the last holders' logs.
		e.logs.logger().Named("plugin."+e.sup.Name()).Info("plugin process kept idle for the next run of the same plugin launch", "idle_ttl", p.ttl.String(), "pid", e.sup.Pid())
	}
	if e.logs != nil {
		e.logs.drop(holders)
	}
}

// expire stops e when its idle period gen ended with no run taking it.
func (p *pluginPool) expire(e *pooled, gen int) {
	p.mu.Lock()
	if e.gen != gen || p.idle[e.key] != e {
		p.mu.Unlock()
		return
	}
	delete(p.idle, e.key)
	delete(p.bySup, e.sup)
	delete(p.logs, e.sup)
	e.timer = nil
	p.mu.Unlock()
	e.sup.Close()
}

// shutdown stops the idle processes, and keeps none from now on (the
// daemon is stopping).
func (p *pluginPool) shutdown() {
	p.mu.Lock()
	p.closed = true
	var idle []*pooled
	for k, e := range p.idle {
		delete(p.idle, k)
		delete(p.bySup, e.sup)
		delete(p.logs, e.sup)
		e.timer.Stop()
		e.gen++
		idle = append(idle, e)
	}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, e := range idle {
		wg.Go(e.sup.Close)
	}
	wg.Wait()
}

// running counts the processes the pool holds, idle ones included (for
// tests and status).
func (p *pluginPool) running() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.bySup)
}

// idleCount counts the kept processes no run holds.
func (p *pluginPool) idleCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}
