package plugin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"
	"google.golang.org/grpc"
)

// LaunchOptions configures Launch.
type LaunchOptions struct {
	// Path of the plugin binary.
	Path string
	Args []string
	// Env is the complete environment of the plugin: the host's own
	// environment is never inherited, so secrets in it cannot leak.
	Env []string
	// SHA256 is the expected checksum of the binary. go-plugin hashes the
	// file again on every launch; a mismatch refuses to start. Empty
	// skips the check (only for tests and `plugin inspect <path>`).
	SHA256 []byte
	// Logger receives the plugin's stderr log lines (hclog JSON).
	Logger hclog.Logger
	// StartTimeout bounds launch + handshake. Zero means 10s.
	StartTimeout time.Duration
	// Reattach attaches to a plugin already running (WithDebug) instead
	// of starting Path.
	Reattach *ReattachInfo
	// SysProcAttr overrides the process attributes (sandboxing). Pdeathsig
	// is always set so the plugin dies with the host.
	SysProcAttr *syscall.SysProcAttr
	// Cmd, when set, is the command to run instead of one built from Path,
	// Args and Env (a host that verified the binary itself and executes it
	// from a descriptor, or wraps it in a sandbox). Path still names the
	// plugin in errors; SHA256 is ignored.
	Cmd *exec.Cmd
	// SocketDir is where the plugin and the host create their unix
	// sockets (go-plugin makes a private directory inside it and removes
	// it when the plugin is killed). Empty means a private directory
	// Launch makes in the system temp dir and Kill (or a failed launch)
	// removes as a whole, with whatever a plugin killed by SIGKILL left.
	SocketDir string
	// Runner, when set, starts the plugin instead of a plain exec (the
	// host's plugin box): it gets the command go-plugin prepared (Args:
	// Path and Args, or Cmd's; Env: Env, or Cmd's, plus the handshake
	// variables, PLUGIN_UNIX_SOCKET_DIR among them) and the per-plugin
	// socket directory both sides use. The runner must verify the binary
	// itself; SHA256 and Cmd's descriptors are not used.
	Runner func(logger hclog.Logger, cmd *exec.Cmd, socketDir string) (runner.Runner, error)
	// TLS uses go-plugin's AutoMTLS on the plugin socket instead of
	// authenticating the plugin by its kernel credentials (PeerCred), as
	// hosts did before. Off by default on Linux, always on elsewhere.
	TLS bool
}

// Launched is a running plugin process and its connection.
type Launched struct {
	*Client
	proc *goplugin.Client
	// text keeps what the plugin wrote to stderr that is not a log line.
	text *stderrText
	// pid is the process started by our runner (go-plugin's
	// ReattachConfig only knows processes it started itself).
	pid int
	// reattached is a debug plugin the host did not start: Kill leaves
	// it running and only closes the host's side.
	reattached bool
	// ownDir is the socket directory Launch made (LaunchOptions.SocketDir
	// was empty), removed by Kill.
	ownDir string
}

// StderrText is the tail (up to 16 KiB) of what the plugin wrote to
// stderr outside its JSON log lines: a Go panic and its goroutine stacks,
// a Python traceback, an interpreter's error. Complete once Kill returned.
func (l *Launched) StderrText() string {
	if l.text == nil {
		return ""
	}
	return l.text.String()
}

// Exited reports whether the plugin process has exited.
func (l *Launched) Exited() bool { return l.proc.Exited() }

// Kill stops the plugin: a graceful shutdown request, then SIGKILL after
// go-plugin's grace period (2s). A reattached debug plugin keeps running
// (it is the debugger's); the host closes its connection and its broker,
// whose socket go-plugin makes in the temp dir for a reattached client
// (ClientConfig.UnixSocketConfig only applies to plugins it launches) and
// would otherwise leave there.
func (l *Launched) Kill() {
	if l.reattached {
		l.Client.closeHost()
		_ = l.Client.conn.Close()
	} else {
		// go-plugin's Kill closes the broker.
		l.Client.quiesceHost()
	}
	l.proc.Kill()
	if l.ownDir != "" {
		_ = os.RemoveAll(l.ownDir)
	}
}

// Pid is the plugin's process id, or 0 when reattached.
func (l *Launched) Pid() int {
	if l.pid != 0 {
		return l.pid
	}
	if rc := l.proc.ReattachConfig(); rc != nil {
		return rc.Pid
	}
	return 0
}

// Launch starts a plugin binary (or reattaches to a debug one), completes
// the handshake and returns its client. The process is killed if anything
// fails.
func Launch(ctx context.Context, o LaunchOptions) (*Launched, error) {
	if o.Reattach != nil || o.SocketDir != "" {
		return launch(ctx, o)
	}
	// go-plugin would make its per-launch directory in the temp dir and
	// keep it when the process never started; a directory of our own goes
	// as a whole, on every path.
	dir, err := os.MkdirTemp("", "nemoclave-plugin-")
	if err != nil {
		return nil, fmt.Errorf("plugin socket directory: %w (set TMPDIR to a writable directory)", err)
	}
	o.SocketDir = dir
	l, err := launch(ctx, o)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	l.ownDir = dir
	return l, nil
}

func launch(ctx context.Context, o LaunchOptions) (*Launched, error) {
	if o.StartTimeout == 0 {
		o.StartTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	text := &stderrText{}
	useTLS := o.TLS || !peerCredSupported
	// pid is the process the plugin's socket must belong to (or descend
	// from), known once the runner started it and before go-plugin dials.
	var pid func() int
	peer := &PeerCred{Side: "host", Pid: func() int {
		if pid == nil {
			return -1 // fail closed: no launch path leaves it unset
		}
		return pid()
	}}
	dialOpts := []grpc.DialOption{grpc.WithDefaultCallOptions(
		grpc.MaxCallRecvMsgSize(MaxMessageBytes), grpc.MaxCallSendMsgSize(MaxMessageBytes))}
	if !useTLS {
		// Replaces the insecure credentials go-plugin sets without TLS
		// (its dial options come after its own).
		dialOpts = append(dialOpts, grpc.WithTransportCredentials(peer))
	} else {
		peer = nil
	}
	cfg := &goplugin.ClientConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: versionedPlugins(nil),
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		AutoMTLS:         useTLS,
		Logger:           o.Logger,
		StartTimeout:     o.StartTimeout,
		SkipHostEnv:      true,
		Managed:          false,
		GRPCDialOptions:  dialOpts,
		// go-plugin redirects the plugin's os.Stdout and os.Stderr once
		// Serve runs and forwards them over gRPC; without these writers the
		// host discards them, losing every log line written to stderr by a
		// logger created after Serve started (in Configure, say).
		SyncStdout: &stdioLogger{logger: o.Logger, level: hclog.Debug},
		SyncStderr: &stdioLogger{logger: o.Logger, level: hclog.Info},
		// go-plugin logs the plugin's raw stderr lines that are not hclog
		// JSON at debug level, one entry per line, so a crash's stack
		// trace is lost at the host's usual level. Keep them as text.
		Stderr: text,
	}
	if o.Reattach != nil {
		addr, err := reattachAddr(o.Reattach)
		if err != nil {
			return nil, err
		}
		cfg.Reattach = &goplugin.ReattachConfig{Protocol: goplugin.Protocol(o.Reattach.Protocol), ProtocolVersion: o.Reattach.ProtocolVersion, Addr: addr, Pid: o.Reattach.Pid, Test: true}
		cfg.AutoMTLS = false
		// go-plugin ignores UnixSocketConfig when reattaching: the host's
		// broker listens in the temp dir, and Kill removes its socket.
		if peer == nil && peerCredSupported {
			// A debug plugin never has TLS: check its uid at least.
			peer = &PeerCred{Side: "host"}
			cfg.GRPCDialOptions = append(cfg.GRPCDialOptions, grpc.WithTransportCredentials(peer))
		}
		if peer != nil {
			// A debugger may sit between: the uid is checked, not the pid.
			peer.Pid = nil
		}
		// go-plugin only picks a plugin set from VersionedPlugins during a
		// handshake; a reattached client skips it and needs Plugins set,
		// or every Dispense fails with "unknown plugin type".
		cfg.Plugins = cfg.VersionedPlugins[o.Reattach.ProtocolVersion]
		if cfg.Plugins == nil {
			return nil, fmt.Errorf("reattach: the debug plugin speaks protocol version %d, this nemoclave speaks %d; rebuild one of them", o.Reattach.ProtocolVersion, ProtocolVersion)
		}
	} else if o.Runner != nil {
		env, args := o.Env, o.Args
		if o.Cmd != nil {
			env = o.Cmd.Env
			if len(o.Cmd.Args) > 1 {
				args = o.Cmd.Args[1:]
			}
		}
		var started runner.Runner
		cfg.UnixSocketConfig = &goplugin.UnixSocketConfig{TempDir: o.SocketDir}
		cfg.RunnerFunc = func(l hclog.Logger, cmd *exec.Cmd, socketDir string) (runner.Runner, error) {
			cmd.Path = o.Path
			cmd.Args = append([]string{o.Path}, args...)
			cmd.Env = append(append([]string(nil), env...), cmd.Env...)
			r, err := o.Runner(l, cmd, socketDir)
			started = r
			return r, err
		}
		pid = func() int {
			if started == nil {
				return -1
			}
			if n, err := strconv.Atoi(started.ID()); err == nil && n > 0 {
				return n
			}
			return -1
		}
		goDir := recordSocketDir(cfg)
		proc := goplugin.NewClient(cfg)
		rpc, err := proc.Client()
		if err != nil {
			killAndRemove(proc, *goDir)
			return nil, fmt.Errorf("launch plugin %s: %w", o.Path, explainLaunchError(err))
		}
		raw, err := rpc.Dispense(pluginName)
		if err != nil {
			killAndRemove(proc, *goDir)
			return nil, fmt.Errorf("plugin %s: %w", o.Path, err)
		}
		l := &Launched{Client: raw.(*Client), proc: proc, text: text}
		l.Client.peer = peer
		if started != nil {
			l.pid, _ = strconv.Atoi(started.ID())
		}
		return l, nil
	} else if o.Cmd != nil {
		if o.Cmd.SysProcAttr == nil {
			o.Cmd.SysProcAttr = &syscall.SysProcAttr{}
		}
		o.Cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
		cfg.Cmd = o.Cmd
	} else {
		if _, err := os.Stat(o.Path); err != nil {
			return nil, fmt.Errorf("plugin binary %s: %w (build it with `make plugins` or install it with `nemoclave plugin install`)", o.Path, err)
		}
		cmd := exec.Command(o.Path, o.Args...)
		cmd.Env = o.Env
		attr := o.SysProcAttr
		if attr == nil {
			attr = &syscall.SysProcAttr{}
		}
		attr.Pdeathsig = syscall.SIGKILL
		cmd.SysProcAttr = attr
		cfg.Cmd = cmd
		if len(o.SHA256) > 0 {
			cfg.SecureConfig = &goplugin.SecureConfig{Checksum: o.SHA256, Hash: sha256.New()}
		}
	}
	var run **cmdRunner
	if cfg.Cmd != nil {
		// Our runner keeps the plugin's stderr tail and exit status, and
		// (being a RunnerFunc) makes go-plugin create a private socket
		// directory in SocketDir for the plugin's and the host's broker
		// sockets, removed on Kill.
		if cfg.SecureConfig != nil {
			// go-plugin checks SecureConfig against Cmd.Path, which a
			// RunnerFunc launch does not have: check it here.
			if ok, err := cfg.SecureConfig.Check(cfg.Cmd.Path); err != nil || !ok {
				if err == nil {
					err = goplugin.ErrChecksumsDoNotMatch
				}
				return nil, fmt.Errorf("launch plugin %s: %w", o.Path, explainLaunchError(err))
			}
			cfg.SecureConfig = nil
		}
		run = useRunner(cfg, cfg.Cmd, o.Path, o.SocketDir)
		pid = func() int {
			if *run == nil || (*run).cmd.Process == nil {
				return -1
			}
			return (*run).cmd.Process.Pid
		}
	}
	goDir := recordSocketDir(cfg)
	proc := goplugin.NewClient(cfg)
	rpc, err := proc.Client()
	if err != nil {
		detail := ""
		if run != nil && *run != nil {
			detail = "\n  " + (*run).explain(2*time.Second)
		}
		killAndRemove(proc, *goDir)
		return nil, fmt.Errorf("launch plugin %s: %w%s", o.Path, explainLaunchError(err), detail)
	}
	raw, err := rpc.Dispense(pluginName)
	if err != nil {
		killAndRemove(proc, *goDir)
		return nil, fmt.Errorf("plugin %s: %w", o.Path, err)
	}
	l := &Launched{Client: raw.(*Client), proc: proc, text: text, reattached: o.Reattach != nil}
	l.Client.peer = peer
	if run != nil && *run != nil && (*run).cmd.Process != nil {
		l.pid = (*run).cmd.Process.Pid
	}
	return l, nil
}

// recordSocketDir makes cfg's RunnerFunc (if any) note the per-launch
// socket directory go-plugin made for it.
func recordSocketDir(cfg *goplugin.ClientConfig) *string {
	var dir string
	if f := cfg.RunnerFunc; f != nil {
		cfg.RunnerFunc = func(l hclog.Logger, cmd *exec.Cmd, socketDir string) (runner.Runner, error) {
			dir = socketDir
			return f(l, cmd, socketDir)
		}
	}
	return &dir
}

// killAndRemove ends a plugin whose launch failed. go-plugin's Kill
// removes the launch's socket directory only when the process started;
// a launch that failed before (a binary that cannot be executed, a runner
// that refused) would leave it behind.
func killAndRemove(proc *goplugin.Client, socketDir string) {
	proc.Kill()
	if socketDir != "" {
		_ = os.RemoveAll(socketDir)
	}
}

// stderrTextMax bounds stderrText: a Go panic with a few goroutines fits.
const stderrTextMax = 16 << 10

// stderrText keeps the last stderrTextMax bytes of the non-JSON lines
// written to it (go-plugin writes every raw stderr line, then "\n").
type stderrText struct {
	mu      sync.Mutex
	pending []byte
	kept    []byte
}

func (w *stderrText) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending = append(w.pending, p...)
	for {
		i := bytes.IndexByte(w.pending, '\n')
		if i < 0 {
			break
		}
		line := w.pending[:i+1]
		if !isLogLine(line) {
			w.kept = append(w.kept, line...)
			if len(w.kept) > stderrTextMax {
				w.kept = w.kept[len(w.kept)-stderrTextMax:]
			}
		}
		w.pending = w.pending[i+1:]
	}
	return len(p), nil
}

func (w *stderrText) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.kept) + string(w.pending)
}

// isLogLine reports whether line is an hclog JSON entry (logged on its
// own by go-plugin).
func isLogLine(line []byte) bool {
	line = bytes.TrimSpace(line)
	if len(line) == 0 || line[0] != '{' {
		return false
	}
	var entry struct {
		Message *string `json:"@message"`
	}
	return json.Unmarshal(line, &entry) == nil && entry.Message != nil
}

// stdioLogger logs each line written to it: hclog JSON lines at their own
// level with their fields, anything else at level.
type stdioLogger struct {
	logger hclog.Logger
	level  hclog.Level
	mu     sync.Mutex
	buf    []byte
}

func (w *stdioLogger) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.logLine(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

func (w *stdioLogger) logLine(line []byte) {
	var entry map[string]any
	if json.Unmarshal(line, &entry) == nil {
		if msg, ok := entry["@message"].(string); ok {
			level := hclog.LevelFromString(fmt.Sprint(entry["@level"]))
			if level == hclog.NoLevel {
				level = w.level
			}
			keys := make([]string, 0, len(entry))
			for k := range entry {
				if !strings.HasPrefix(k, "@") && k != "timestamp" {
					keys = append(keys, k)
				}
			}
			sort.Strings(keys)
			args := make([]any, 0, 2*len(keys)+2)
			if mod, ok := entry["@module"].(string); ok {
				args = append(args, "@module", mod)
			}
			for _, k := range keys {
				args = append(args, k, entry[k])
			}
			w.logger.Log(level, msg, args...)
			return
		}
	}
	if len(bytes.TrimSpace(line)) > 0 {
		w.logger.Log(w.level, string(line))
	}
}

func explainLaunchError(err error) error {
	switch {
	case errors.Is(err, goplugin.ErrChecksumsDoNotMatch):
		return fmt.Errorf("%w: the binary changed since it was installed; reinstall it with `nemoclave plugin install --path <binary>` if the change is yours", err)
	case errors.Is(err, goplugin.ErrSecureConfigNoChecksum), errors.Is(err, goplugin.ErrSecureConfigNoHash):
		return err
	}
	return fmt.Errorf("%w (a plugin must call plugin.Serve from main and print nothing to stdout before it; usually it only needs to be rebuilt against the current SDK)", err)
}

func reattachAddr(r *ReattachInfo) (net.Addr, error) {
	switch r.Network {
	case "unix":
		return net.ResolveUnixAddr("unix", r.Address)
	case "tcp":
		return net.ResolveTCPAddr("tcp", r.Address)
	}
	return nil, fmt.Errorf("reattach: unknown network %q", r.Network)
}

// ParseReattach reads NEMOCLAVE_REATTACH_PLUGINS (name → ReattachInfo).
func ParseReattach(v string) (map[string]ReattachInfo, error) {
	if v == "" {
		return nil, nil
	}
	out := map[string]ReattachInfo{}
	if err := json.Unmarshal([]byte(v), &out); err != nil {
		return nil, fmt.Errorf("%s: %w", ReattachEnv, err)
	}
	return out, nil
}
