package plugins

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/nemoclave/nemoclave/sandbox/pluginbox"
	"github.com/nemoclave/nemoclave/sdk/plugin"
)

// Spec is one use of a plugin: what a blueprint's plugin block says.
type Spec struct {
	// Source is builtin/<kind>-<name>, an installed name or a path.
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
// named in NEMOCLAVE_REATTACH_PLUGINS, and completes the handshake. It does
// not configure or supervise the plugin: the caller must Kill it. b.SHA256
// is verified against the file before it is executed.
func (m *Manager) Launch(ctx context.Context, b *Binary, spec Spec) (*plugin.Launched, error) {
	kind, name := spec.labels(b)
	logger := m.logger.Named("plugin." + kind + "." + name)
	if ri, ok := m.reattachFor(b); ok {
		logger.Info("attaching to debug plugin", "pid", ri.Pid, "address", ri.Address)
		return plugin.Launch(ctx, plugin.LaunchOptions{Path: b.Path, Reattach: &ri, Logger: logger, StartTimeout: m.opts.StartTimeout})
	}
	if len(b.SHA256) != sha256Len {
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
	l, err := plugin.Launch(ctx, plugin.LaunchOptions{
		Path:         b.Path,
		Env:          env,
		SHA256:       b.SHA256,
		Logger:       logger,
		StartTimeout: m.opts.StartTimeout,
		Runner:       m.boxRunner(b, spec, kind, name, stateDir),
	})
	if err != nil {
		return nil, m.explainLaunch(b, err)
	}
	return l, nil
}

const sha256Len = 32

// explainLaunch adds what the user can do, by origin, to a checksum refusal.
func (m *Manager) explainLaunch(b *Binary, err error) error {
	if !strings.Contains(err.Error(), "checksums did not match") {
		return err
	}
	var fix string
	switch b.Origin {
	case OriginInstalled:
		fix = fmt.Sprintf("it no longer matches the sha256 recorded in %s (%s); if you replaced it on purpose, run `nemoclave plugin install --path <binary> --name %s`", filepath.Join(m.pluginsDir(), LockFileName), b.Checksum(), b.Source)
	default:
		fix = fmt.Sprintf("the file changed after nemoclave hashed it (%s) and before launch; refusing to run it. Retry once the binary is no longer being rebuilt or replaced", b.Checksum())
	}
	return fmt.Errorf("plugin %s (%s) refused: checksum mismatch: %s: %w", b.Source, b.Path, fix, err)
}

func (m *Manager) reattachFor(b *Binary) (plugin.ReattachInfo, bool) {
	for _, k := range []string{b.Source, b.ShortName} {
		if ri, ok := m.reattach[k]; ok {
			return ri, true
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
