package plugins

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/nemoclave/nemoclave/internal/pluginsource"
	"github.com/nemoclave/nemoclave/sdk/plugin"
)

// stableAfter is how long a plugin must stay up for its restart backoff to
// start again from Options.RestartBackoff: a plugin that crashes once a day
// should not wait 30s, one that crashes on every start should.
const stableAfter = time.Minute

// killTimeout bounds Close for a plugin that cannot even answer go-plugin's
// shutdown request (stopped, or wedged in its gRPC server): after it, the
// process is SIGKILLed. go-plugin's own 2s grace covers plugins that answer
// but do not exit.
const killTimeout = 5 * time.Second

// killWithin kills l gracefully, falling back to SIGKILL after d.
func killWithin(l *plugin.Launched, d time.Duration) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.Kill()
	}()
	select {
	case <-done:
		return
	case <-time.After(d):
	}
	if pid := l.Pid(); pid > 0 {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	<-done
}

// Supervised is a configured plugin kept running: a crash is noticed on
// the failing call or by the periodic health check, and the plugin is
// relaunched (a new process and client every time, never the failed one)
// with backoff and reconfigured with the last config and wirings. Its kind
// clients route each call to whichever process is current.
type Supervised struct {
	m          *Manager
	bin        *Binary
	kind, name string
	log        hclog.Logger
	// reattached plugins belong to a developer's debugger: a breakpoint
	// must not look like a hang, so they get no timed health check and are
	// never SIGKILLed.
	reattached bool
	conn       *supervisedConn

	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{} // closed when monitor returns
	wake    chan struct{} // a call noticed a crash
	backoff time.Duration // touched only by monitor

	mu         sync.Mutex
	spec       Spec
	cur        *plugin.Launched // nil while restarting or closed
	dead       *plugin.Launched // crashed, waiting for monitor to kill it
	info       *plugin.RemoteInfo
	ready      chan struct{} // closed while cur != nil
	startedAt  time.Time
	restarts   int
	lastErr    error
	closed     bool
	dependents map[*Supervised]struct{}
}

// ConfigError is a configuration the plugin refused.
type ConfigError struct {
	Plugin      string
	Diagnostics []plugin.Diagnostic
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "plugin %s refused its configuration:", e.Plugin)
	for _, d := range e.Diagnostics {
		if d.Severity == plugin.SeverityWarning {
			continue
		}
		b.WriteString("\n  ")
		if len(d.Path) > 0 {
			b.WriteString(strings.Join(d.Path, ".") + ": ")
		}
		b.WriteString(d.Summary)
		if d.Detail != "" {
			b.WriteString(" (" + d.Detail + ")")
		}
	}
	return b.String()
}

// Start resolves spec.Source, launches and configures the plugin, and
// supervises it until Close (or Manager.Close). A plugin that fails to
// start or refuses its config is an error here, not retried: that is a
// problem for the user to fix, not a crash.
func (m *Manager) Start(ctx context.Context, spec Spec) (*Supervised, error) {
	b, err := m.resolveSpec(spec)
	if err != nil {
		return nil, err
	}
	kind, name := spec.labels(b)
	sctx, cancel := context.WithCancel(context.Background())
	s := &Supervised{
		m: m, bin: b, kind: kind, name: name,
		log:    m.loggerFor(spec).Named("plugin." + kind + "." + name),
		ctx:    sctx,
		cancel: cancel,
		done:   make(chan struct{}),
		wake:   make(chan struct{}, 1),
		spec:   spec, ready: make(chan struct{}),
		dependents: map[*Supervised]struct{}{},
	}
	s.conn = &supervisedConn{s: s}
	_, s.reattached = m.reattachFor(b, spec)
	l, info, err := s.launchAndConfigure(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		cancel()
		l.Kill()
		return nil, errors.New("plugin manager is closed")
	}
	m.supervised[s] = struct{}{}
	m.mu.Unlock()
	s.setCurrent(l, info)
	for _, w := range spec.Wires {
		w.Target.addDependent(s)
	}
	go s.monitor()
	return s, nil
}

// resolveSpec resolves spec.Source, held to spec.Pin: the locked version
// of an address, and the locked hash, checked here before every launch
// (the launch then verifies the file against that hash).
func (m *Manager) resolveSpec(spec Spec) (*Binary, error) {
	p := spec.Pin
	if p == nil {
		return m.Resolve(spec.Source)
	}
	if p.DevOverride != "" {
		m.loggerFor(spec).Warn("plugin dev override in effect: version and checksum not checked", "source", spec.Source, "binary", p.DevOverride)
		return resolvePath(p.DevOverride)
	}
	source := spec.Source
	if p.Version != "" {
		if src, err := pluginsource.Parse(source, false); err == nil && src.Type == pluginsource.Installed {
			source = src.Address() + "@" + p.Version
		}
	}
	b, err := m.Resolve(source)
	if err != nil {
		return nil, err
	}
	if b.Hash != p.Hash {
		return nil, fmt.Errorf("plugin %s (%s) refused: its hash %s is not the one locked for this blueprint (%s); if you changed it on purpose, run `nemoclave init` in the blueprint's directory", spec.Source, b.Path, b.Hash, p.Hash)
	}
	return b, nil
}

// Name is <kind>.<name>, as used in logs and errors.
func (s *Supervised) Name() string { return s.kind + "." + s.name }

// Kind is the kind label the plugin was started for.
func (s *Supervised) Kind() plugin.Kind { return plugin.Kind(s.kind) }

// Binary is the resolved binary, with its trusted checksum.
func (s *Supervised) Binary() *Binary { return s.bin }

// Info is what the current (or last) process reported at launch.
func (s *Supervised) Info() *plugin.RemoteInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.info
}

// Pid is the current process id, 0 while restarting or when reattached.
func (s *Supervised) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		return 0
	}
	return s.cur.Pid()
}

// Restarts counts relaunches after crashes.
func (s *Supervised) Restarts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.restarts
}

// Client is the current process's client. Prefer the kind accessors (they
// survive restarts); this is for wiring and one-off calls.
func (s *Supervised) Client() (*plugin.Client, error) {
	l, err := s.current()
	if err != nil {
		return nil, err
	}
	return l.Client, nil
}

// Conn routes calls to the current process and turns a crash into
// Unavailable "plugin X crashed; restarting". Build any kind's client on it
// (llm.NewClient(s.Conn())); the clients stay valid across restarts.
func (s *Supervised) Conn() grpc.ClientConnInterface { return s.conn }

// Ready waits until a process is running (after a crash, until the restart
// succeeds). It fails when ctx ends or the plugin is closed.
func (s *Supervised) Ready(ctx context.Context) error {
	for {
		s.mu.Lock()
		closed, cur, ready, lastErr := s.closed, s.cur, s.ready, s.lastErr
		s.mu.Unlock()
		switch {
		case closed:
			return fmt.Errorf("plugin %s is shut down", s.Name())
		case cur != nil:
			return nil
		}
		select {
		case <-ready:
		case <-ctx.Done():
			return fmt.Errorf("plugin %s is not running (last error: %v): %w", s.Name(), lastErr, ctx.Err())
		}
	}
}

// Reconfigure replaces the config and wires and applies them to the running
// process. A config the plugin refuses is returned as a *ConfigError and the
// previous config stays in force (also for later restarts).
func (s *Supervised) Reconfigure(ctx context.Context, config []byte, wires []Wire) error {
	l, err := s.current()
	if err != nil {
		return err
	}
	s.mu.Lock()
	spec := s.spec
	s.mu.Unlock()
	spec.Config, spec.Wires = config, wires
	if err := s.configure(ctx, l, spec); err != nil {
		return err
	}
	s.mu.Lock()
	old := s.spec.Wires
	s.spec = spec
	s.mu.Unlock()
	for _, w := range old {
		w.Target.removeDependent(s)
	}
	for _, w := range wires {
		w.Target.addDependent(s)
	}
	return nil
}

// Close stops supervision and kills the process (graceful shutdown, then
// SIGKILL after go-plugin's 2s grace period). It is idempotent.
func (s *Supervised) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.done
		return
	}
	s.closed = true
	cur, dead := s.cur, s.dead
	s.cur, s.dead = nil, nil
	wires := s.spec.Wires
	s.mu.Unlock()
	s.cancel()
	<-s.done
	for _, l := range []*plugin.Launched{cur, dead} {
		if l != nil {
			killWithin(l, killTimeout)
		}
	}
	for _, w := range wires {
		w.Target.removeDependent(s)
	}
	s.m.mu.Lock()
	delete(s.m.supervised, s)
	s.m.mu.Unlock()
}

func (s *Supervised) launchAndConfigure(ctx context.Context) (*plugin.Launched, *plugin.RemoteInfo, error) {
	s.mu.Lock()
	spec := s.spec
	s.mu.Unlock()
	l, err := s.m.Launch(ctx, s.bin, spec)
	if err != nil {
		return nil, nil, err
	}
	info, err := l.Info(ctx)
	if err != nil {
		l.Kill()
		return nil, nil, fmt.Errorf("plugin %s: info: %w", s.Name(), err)
	}
	if spec.Kind != "" && !slices.Contains(info.Kinds, spec.Kind) {
		l.Kill()
		return nil, nil, fmt.Errorf("plugin %s (%s) does not serve kind %q, it serves %v; fix the plugin block's kind label or its source", s.Name(), s.bin.Source, spec.Kind, info.Kinds)
	}
	if err := s.configure(ctx, l, spec); err != nil {
		l.Kill()
		return nil, nil, err
	}
	return l, info, nil
}

func (s *Supervised) configure(ctx context.Context, l *plugin.Launched, spec Spec) error {
	stateDir, err := s.m.stateDirFor(spec, s.kind, s.name)
	if err != nil {
		return err
	}
	diags, err := l.Configure(ctx, plugin.ConfigureOptions{Config: spec.Config, StateDir: stateDir, Wirings: hostWirings(spec.Wires), Logger: s.log})
	if err != nil {
		return fmt.Errorf("plugin %s: configure: %w", s.Name(), err)
	}
	for _, d := range diags {
		if d.Severity != plugin.SeverityWarning {
			return &ConfigError{Plugin: s.Name(), Diagnostics: diags}
		}
		s.log.Warn("config warning", "path", strings.Join(d.Path, "."), "summary", d.Summary)
	}
	return nil
}

// hostWirings binds each wire to its target's current process. A target
// that is restarting is bound as unwired until it is back: its restart
// reconfigures its dependents.
func hostWirings(wires []Wire) []plugin.HostWiring {
	out := make([]plugin.HostWiring, 0, len(wires))
	for _, w := range wires {
		hw := plugin.HostWiring{Wiring: plugin.Wiring{Attribute: w.Attribute, Kind: w.Target.Kind(), Target: "plugin." + w.Target.Name()}}
		if c, err := w.Target.Client(); err == nil {
			hw.Plugin = c
		}
		out = append(out, hw)
	}
	return out
}

func (s *Supervised) addDependent(d *Supervised) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dependents[d] = struct{}{}
}

func (s *Supervised) removeDependent(d *Supervised) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.dependents, d)
}

func (s *Supervised) setCurrent(l *plugin.Launched, info *plugin.RemoteInfo) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if !s.startedAt.IsZero() {
		s.restarts++
	}
	s.cur, s.info, s.startedAt, s.lastErr = l, info, time.Now(), nil
	close(s.ready)
	return true
}

func (s *Supervised) current() (*plugin.Launched, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return nil, grpcstatus.Errorf(codes.Unavailable, "plugin %s is shut down", s.Name())
	case s.cur == nil:
		return nil, grpcstatus.Errorf(codes.Unavailable, "plugin %s crashed; restarting (last error: %v)", s.Name(), s.lastErr)
	}
	return s.cur, nil
}

// crashed retires l if it is still current and wakes the monitor. Calls
// racing on the same dead process retire it once.
func (s *Supervised) crashed(l *plugin.Launched, reason error) {
	s.mu.Lock()
	if s.cur != l {
		s.mu.Unlock()
		return
	}
	s.cur, s.dead, s.lastErr = nil, l, reason
	s.ready = make(chan struct{})
	s.mu.Unlock()
	s.log.Error("plugin crashed; restarting", "error", reason)
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Supervised) monitor() {
	defer close(s.done)
	t := time.NewTicker(s.m.opts.HealthInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			s.healthCheck()
		case <-s.wake:
		}
		s.mu.Lock()
		down := s.cur == nil && !s.closed
		s.mu.Unlock()
		if down {
			s.restart()
		}
	}
}

func (s *Supervised) healthCheck() {
	l, err := s.current()
	if err != nil {
		return
	}
	if l.Exited() {
		s.crashed(l, errors.New("process exited"))
		return
	}
	if s.reattached {
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.m.opts.HealthTimeout)
	defer cancel()
	if _, err := l.Info(ctx); err != nil && s.ctx.Err() == nil {
		s.crashed(l, fmt.Errorf("health check failed: %w", err))
	}
}

// restart kills the dead process and relaunches until one starts and
// accepts its config, doubling the delay after each failure.
func (s *Supervised) restart() {
	s.mu.Lock()
	dead := s.dead
	s.dead = nil
	if time.Since(s.startedAt) > stableAfter {
		s.backoff = 0
	}
	s.mu.Unlock()
	if dead != nil {
		if !dead.Exited() && dead.Pid() > 0 && !s.reattached {
			// Hung, not crashed: it will not honour a graceful shutdown.
			_ = syscall.Kill(dead.Pid(), syscall.SIGKILL)
		}
		dead.Kill()
		// After Kill the dead process's stderr is read to the end: its
		// panic and stack trace (or traceback) go to the log as one text
		// entry, not line by line at debug level.
		if text := strings.TrimSpace(dead.StderrText()); text != "" {
			s.log.Error("the crashed plugin's last output", "pid", dead.Pid(), "stderr", text)
		}
	}
	for attempt := 1; ; attempt++ {
		s.backoff = min(max(2*s.backoff, s.m.opts.RestartBackoff), s.m.opts.MaxRestartBackoff)
		s.log.Warn("restarting plugin", "attempt", attempt, "delay", s.backoff)
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(s.backoff):
		}
		l, info, err := s.launchAndConfigure(s.ctx)
		if err != nil {
			if s.ctx.Err() != nil {
				return
			}
			s.mu.Lock()
			s.lastErr = err
			s.mu.Unlock()
			s.log.Error("plugin restart failed", "attempt", attempt, "error", err)
			continue
		}
		if !s.setCurrent(l, info) {
			l.Kill()
			return
		}
		s.log.Info("plugin restarted", "pid", l.Pid(), "attempt", attempt)
		s.rewireDependents()
		return
	}
}

// rewireDependents reconfigures the plugins wired to this one so their host
// services reach the new process, not the dead one.
func (s *Supervised) rewireDependents() {
	s.mu.Lock()
	deps := make([]*Supervised, 0, len(s.dependents))
	for d := range s.dependents {
		deps = append(deps, d)
	}
	s.mu.Unlock()
	for _, d := range deps {
		l, err := d.current()
		if err != nil {
			continue // restarting: it is configured with fresh wirings then
		}
		d.mu.Lock()
		spec := d.spec
		d.mu.Unlock()
		ctx, cancel := context.WithTimeout(s.ctx, s.m.opts.HealthTimeout)
		if err := d.configure(ctx, l, spec); err != nil {
			d.log.Error("rewiring after a restart failed", "target", s.Name(), "error", err)
		}
		cancel()
	}
}

// Reusable says why this process must not serve another run after the
// ones it served ended (nil: it may): it is shut down, it crashed or was
// restarted since its launch, it belongs to a debugger (reattached), or
// its spec no longer resolves to the binary it runs — rebuilt,
// reinstalled or re-pinned since (the resolution is an fstat and the
// identity cache of verify.go, not a re-hash, unless the file changed).
func (s *Supervised) Reusable() error {
	s.mu.Lock()
	closed, cur, restarts, spec := s.closed, s.cur, s.restarts, s.spec
	s.mu.Unlock()
	switch {
	case closed:
		return fmt.Errorf("plugin %s is shut down", s.Name())
	case s.reattached:
		return fmt.Errorf("plugin %s is a reattached debug plugin", s.Name())
	case cur == nil || cur.Exited():
		return fmt.Errorf("plugin %s is not running (crashed)", s.Name())
	case restarts > 0:
		return fmt.Errorf("plugin %s crashed and was restarted %d times", s.Name(), restarts)
	}
	b, err := s.m.resolveSpec(spec)
	if err != nil {
		return err
	}
	if b.Path != s.bin.Path || b.Hash != s.bin.Hash || b.Root != s.bin.Root {
		return fmt.Errorf("plugin %s changed on disk since its launch (%s %s, now %s %s)", s.Name(), s.bin.Path, s.bin.Hash, b.Path, b.Hash)
	}
	return nil
}
