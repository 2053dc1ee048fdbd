package plugins

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nemoclave/nemoclave/sandbox/pluginbox"
	"github.com/nemoclave/nemoclave/sdk/plugin"
)

// Spec is one use of a plugin: what a blueprint's plugin block says.
type Spec struct {
	// Source is builtin/<kind>-<name>, an installed address or a path.
	Source string
	// Kind and Name are the plugin block's labels (plugin "embeddings"
	// "local"); they name the logger (plugin.<kind>.<name>), the state dir
	// and errors. Empty means the binary's kind hint and short name.
	Kind plugin.Kind
	Name string
	// Config is the decoded config block, credentials resolved.
	Config json.RawMessage
	// Wires connect attributes of this plugin to other supervised plugins.
	Wires []Wire
	// Env adds variables to the allow-listed environment (HOME, the
	// handshake variables and PLUGIN_* are refused).
	Env map[string]string
	// StateDir is the plugin's writable directory and HOME. Empty means
	// <Options.StateDir>/<kind>.<name>.
	StateDir string
	// Access is what a confined plugin may reach beyond its binary and
	// state dir (paths its config names, network); nil means nothing.
	// Ignored unless Options.Box is set.
	Access *pluginbox.Profile
	// Unconfined runs the plugin outside any box (a blueprint's
	// confine = false) even when Options.Box is set.
	Unconfined bool
	// CallTimeout bounds each unary call; zero means the kind's default
	// (DefaultCallTimeouts).
	CallTimeout time.Duration
	// Pin, from the project lock file, fixes the version and hash this
	// launch must use; nil means whatever Source resolves to.
	Pin *Pin
	// Reattach maps sources to debug plugins for this launch only (a
	// run's NEMOCLAVE_REATTACH_PLUGINS, passed through the daemon).
	Reattach map[string]plugin.ReattachInfo
	// Logger, when set, replaces Options.Logger for this launch: its
	// stderr, its Host.Log lines and the manager's own lines about it
	// (crashes, restarts, a dev override) go there, below
	// plugin.<kind>.<name>. The daemon gives each process a logger that
	// writes to the logs of the sandboxes using it; without one, every
	// plugin's lines would share one file.
	Logger hclog.Logger
}

// Wire connects attribute Attribute of a plugin to Target, which the host
// serves to the plugin over the broker (memory asking for embeddings).
type Wire struct {
	Attribute string
	Target    *Supervised
}

func (s Spec) labels(b *Binary) (kind, name string) {
	kind, name = string(s.Kind), s.Name
	if kind == "" {
		kind = b.KindHint()
	}
	if name == "" {
		name = b.ShortName
	}
	return kind, name
}

// Launch starts the binary b for spec, or attaches to a debug instance of it
// named in NEMOCLAVE_REATTACH_PLUGINS (or spec.Reattach), and completes the
// handshake. It does not configure or supervise the plugin: the caller must
// Kill it. The file is verified against b's trusted hash first (without
// re-reading it when its identity is unchanged, see verify.go) and the
// verified file is what runs.
func (m *Manager) Launch(ctx context.Context, b *Binary, spec Spec) (*plugin.Launched, error) {
	kind, name := spec.labels(b)
	logger := m.loggerFor(spec).Named("plugin." + kind + "." + name)
	if ri, ok := m.reattachFor(b, spec); ok {
		logger.Info("attaching to debug plugin", "pid", ri.Pid, "address", ri.Address)
		return plugin.Launch(ctx, plugin.LaunchOptions{Path: b.Path, Reattach: &ri, Logger: logger, StartTimeout: m.opts.StartTimeout})
	}
	if len(b.SHA256) != sha256Len || b.Hash == "" {
		return nil, fmt.Errorf("plugin %s has no trusted checksum; resolve it with Manager.Resolve", b.Source)
	}
	stateDir, err := m.stateDirFor(spec, kind, name)
	if err != nil {
		return nil, err
	}
	env, err := m.environ(stateDir, spec.Env)
	if err != nil {
		return nil, fmt.Errorf("plugin %s.%s: %w", kind, name, err)
	}
	v, err := m.verify(b)
	if err != nil {
		return nil, err
	}
	defer v.close()
	sockets, err := m.socketDir()
	if err != nil {
		return nil, err
	}
	l, err := plugin.Launch(ctx, plugin.LaunchOptions{
		Path:         b.Path,
		Cmd:          command(b, v, env),
		Logger:       logger,
		StartTimeout: m.opts.StartTimeout,
		SocketDir:    sockets,
		Runner:       m.boxRunner(b, v, spec, kind, name, stateDir),
	})
	if err != nil {
		return nil, err
	}
	if err := v.recheck(); err != nil {
		l.Kill()
		return nil, fmt.Errorf("plugin %s (%s) refused: %w; retry once it is no longer being rebuilt or replaced", b.Source, b.Path, err)
	}
	return l, nil
}

// command builds the plugin's process: the one place a launch's argv,
// environment and process attributes are decided (confinement wraps it
// here). A verified ELF binary runs from the descriptor that was verified
// (passed as fd 3, executed as /proc/self/fd/3), so renaming another file
// into its place after the check cannot substitute it; argv[0] stays the
// real path for ps. Scripts and directory plugins run by path (their
// interpreter must open the script by name and find sibling files).
func command(b *Binary, v *verified, env []string) *exec.Cmd {
	cmd := exec.Command(b.Path)
	if v.file != nil && isELF(v.file) {
		cmd = exec.Command("/proc/self/fd/3")
		cmd.Args[0] = b.Path
		cmd.ExtraFiles = []*os.File{v.file}
	}
	if b.Root != "" {
		cmd.Dir = b.Root
	}
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	return cmd
}

const sha256Len = 32

// loggerFor is the parent logger of spec's launch.
func (m *Manager) loggerFor(spec Spec) hclog.Logger {
	if spec.Logger != nil {
		return spec.Logger
	}
	return m.logger
}

// reattachFor finds a debug plugin for b: the run's own reattach map
// (spec.Reattach, passed per run so a running daemon honours it) first,
// then the manager's ($NEMOCLAVE_REATTACH_PLUGINS where it started). Keys
// are a source (builtin/..., an address with or without @version, a path)
// or the binary's short name.
func (m *Manager) reattachFor(b *Binary, spec Spec) (plugin.ReattachInfo, bool) {
	keys := []string{b.Source, b.Address, b.ShortName, spec.Source}
	for _, table := range []map[string]plugin.ReattachInfo{spec.Reattach, m.reattach} {
		for _, k := range keys {
			if ri, ok := table[k]; ok && k != "" {
				return ri, true
			}
		}
	}
	return plugin.ReattachInfo{}, false
}

func (m *Manager) stateDirFor(spec Spec, kind, name string) (string, error) {
	dir := spec.StateDir
	if dir == "" {
		dir = filepath.Join(m.stateDir, safeSegment(kind)+"."+safeSegment(name))
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("plugin state dir: %w (check that %s is writable, or pass --home)", err, dir)
	}
	return dir, nil
}

func safeSegment(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, s)
}

// probe launches b, asks for its Info and kills it.
func (m *Manager) probe(ctx context.Context, b *Binary) (*plugin.RemoteInfo, error) {
	l, err := m.Launch(ctx, b, Spec{})
	if err != nil {
		return nil, err
	}
	defer l.Kill()
	return l.Info(ctx)
}

// probed is a plugin launched unconfigured to answer questions (inspect,
// list, schema lookups), kept until the manager closes.
type probed struct {
	done     chan struct{}
	bin      *Binary
	launched *plugin.Launched
	err      error
}

// Client resolves source and returns a running, unconfigured, unsupervised
// instance of it for Info, Schema and ValidateConfig. Instances are shared
// per source and killed by Close.
func (m *Manager) Client(ctx context.Context, source string) (*plugin.Launched, *Binary, error) {
	for attempt := 0; ; attempt++ {
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return nil, nil, errors.New("plugin manager is closed")
		}
		p, ok := m.probes[source]
		if !ok {
			p = &probed{done: make(chan struct{})}
			m.probes[source] = p
		}
		m.mu.Unlock()
		if !ok {
			p.bin, p.err = m.Resolve(source)
			if p.err == nil {
				p.launched, p.err = m.Launch(ctx, p.bin, Spec{})
			}
			m.mu.Lock()
			if p.err != nil {
				delete(m.probes, source) // a later call may succeed (plugin built meanwhile)
			}
			closed := m.closed
			m.mu.Unlock()
			if closed && p.launched != nil {
				p.launched.Kill()
				p.launched, p.err = nil, errors.New("plugin manager is closed")
			}
			close(p.done)
		}
		select {
		case <-p.done:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
		if p.err != nil || !p.launched.Exited() || attempt > 0 {
			return p.launched, p.bin, p.err
		}
		// It died since: never reuse a dead client, launch a fresh one.
		m.mu.Lock()
		if m.probes[source] == p {
			delete(m.probes, source)
		}
		m.mu.Unlock()
	}
}
