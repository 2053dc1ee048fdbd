package plugins

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nemoclave/nemoclave/sdk/plugin"
)

// BinDirEnv overrides where builtin plugins are looked for (tests, and
// `make` targets that run from the source tree).
const BinDirEnv = "NEMOCLAVE_BIN_DIR"

// Options configures a Manager. The zero value works for the CLI: home from
// the caller, builtins beside the executable.
type Options struct {
	// Home is $NEMOCLAVE_HOME. Installed plugins and the lock file live in
	// Home/plugins; plugin state dirs default to Home/state/plugins.
	Home string
	// BinDir holds the builtin plugins. Empty means $NEMOCLAVE_BIN_DIR,
	// else the directory of the running nemoclave binary (symlinks such as
	// openshell resolved).
	BinDir string
	// StateDir is the parent of every plugin's state dir, which is also
	// the plugin's HOME. Empty means Home/state/plugins.
	StateDir string
	// Logger is the parent of each plugin's logger (plugin.<kind>.<name>).
	Logger hclog.Logger
	// StartTimeout bounds launch and handshake. Zero means 10s: a plugin
	// that has not printed its handshake by then is killed.
	StartTimeout time.Duration
	// HealthInterval is how often a supervised plugin is asked for its
	// Info. Zero means 10s. Crashes are also noticed on the failing call.
	HealthInterval time.Duration
	// HealthTimeout bounds one health check; a plugin that cannot answer
	// Info in time is considered hung and restarted. Zero means 5s.
	HealthTimeout time.Duration
	// RestartBackoff is the first delay before restarting a crashed
	// plugin; it doubles on each consecutive crash up to MaxRestartBackoff.
	// Zero means 250ms and 30s.
	RestartBackoff, MaxRestartBackoff time.Duration
	// Reattach maps a plugin's source or short name to a plugin started by
	// hand under a debugger. Nil means parse $NEMOCLAVE_REATTACH_PLUGINS.
	Reattach map[string]plugin.ReattachInfo
	// LookupEnv reads the host environment the allow list picks from. Nil
	// means os.LookupEnv.
	LookupEnv func(string) (string, bool)
}

// Manager finds, installs, launches and supervises plugins. It is safe for
// concurrent use. Close kills every plugin it launched.
type Manager struct {
	opts      Options
	binDir    string
	stateDir  string
	logger    hclog.Logger
	reattach  map[string]plugin.ReattachInfo
	lookupEnv func(string) (string, bool)

	mu         sync.Mutex
	closed     bool
	probes     map[string]*probed
	supervised map[*Supervised]struct{}
	// sockets is this manager's socket directory (sockets.go), made on
	// first launch.
	sockets string
}

// New returns a Manager. It fails only on a malformed
// NEMOCLAVE_REATTACH_PLUGINS or when no bin directory can be determined.
func New(opts Options) (*Manager, error) {
	m := &Manager{opts: opts, logger: opts.Logger, lookupEnv: opts.LookupEnv,
		probes: map[string]*probed{}, supervised: map[*Supervised]struct{}{}}
	if m.logger == nil {
		m.logger = hclog.NewNullLogger()
	}
	if m.lookupEnv == nil {
		m.lookupEnv = osLookupEnv
	}
	if m.opts.StartTimeout == 0 {
		m.opts.StartTimeout = 10 * time.Second
	}
	if m.opts.HealthInterval == 0 {
		m.opts.HealthInterval = 10 * time.Second
	}
	if m.opts.HealthTimeout == 0 {
		m.opts.HealthTimeout = 5 * time.Second
	}
	if m.opts.RestartBackoff == 0 {
		m.opts.RestartBackoff = 250 * time.Millisecond
	}
	if m.opts.MaxRestartBackoff == 0 {
		m.opts.MaxRestartBackoff = 30 * time.Second
	}
	m.binDir = opts.BinDir
	if m.binDir == "" {
		m.binDir = os.Getenv(BinDirEnv)
	}
	if m.binDir == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("locate builtin plugins: %w (set %s to the directory holding nemoclave-plugin-* binaries)", err, BinDirEnv)
		}
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		m.binDir = filepath.Dir(exe)
	}
	m.stateDir = opts.StateDir
	if m.stateDir == "" {
		m.stateDir = filepath.Join(opts.Home, "state", "plugins")
	}
	m.reattach = opts.Reattach
	if m.reattach == nil {
		v, _ := m.lookupEnv(plugin.ReattachEnv)
		r, err := plugin.ParseReattach(v)
		if err != nil {
			return nil, fmt.Errorf("%w (unset it, or paste the line the debug plugin printed)", err)
		}
		m.reattach = r
	}
	return m, nil
}

// BinDir is where builtin plugins are looked for.
func (m *Manager) BinDir() string { return m.binDir }

func (m *Manager) pluginsDir() string { return filepath.Join(m.opts.Home, "plugins") }

// Close kills every plugin this manager launched, supervised or probed, in
// parallel, and waits for them to exit. A plugin that ignores the graceful
// shutdown is killed after go-plugin's grace period (2s).
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	sups := make([]*Supervised, 0, len(m.supervised))
	for s := range m.supervised {
		sups = append(sups, s)
	}
	probes := m.probes
	m.probes = map[string]*probed{}
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range sups {
		wg.Go(s.Close)
	}
	for _, p := range probes {
		if p.launched != nil {
			wg.Go(func() { killWithin(p.launched, killTimeout) })
		}
	}
	wg.Wait()
	m.removeSocketDir()
}
