package pluginbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin/runner"

	"github.com/nemoclave/nemoclave/sandbox/confine"
)

// Runner returns a go-plugin runner that starts the plugin go-plugin
// described in cmd (argv, handshake environment) inside a box built from p.
// socketDir is go-plugin's per-plugin socket directory: the only host
// directory both sides write, bound at the same path inside the box so the
// plugin's listener and the host's broker listeners need no translation.
func (b *Box) Runner(logger hclog.Logger, cmd *exec.Cmd, socketDir string, p Profile) (runner.Runner, error) {
	p.ReadWrite = append(append([]string(nil), p.ReadWrite...), socketDir)
	cfgW, buf, proxyHost, err := b.command(cmd, socketDir, p)
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err == nil {
		var stderr io.ReadCloser
		if stderr, err = cmd.StderrPipe(); err == nil {
			return &boxRunner{box: b, logger: logger, cmd: cmd, profile: p, cfgW: cfgW, cfgBuf: buf, proxyHost: proxyHost, stdout: stdout, stderr: stderr}, nil
		}
	}
	closeFiles(cmd)
	cfgW.Close()
	if proxyHost != nil {
		proxyHost.Close()
	}
	return nil, err
}

type boxRunner struct {
	box            *Box
	logger         hclog.Logger
	cmd            *exec.Cmd
	profile        Profile
	cfgW           *os.File
	cfgBuf         []byte
	proxyHost      *os.File // NetworkProxy: the listener arrives here
	stdout, stderr io.ReadCloser
	stopEgress     context.CancelFunc

	mu      sync.Mutex
	pid     int
	cg      *confine.Cgroup
	cleaned bool
}

// Start forks the init stage (from a thread that lives as long as the
// process, so the parent-death signal means "the host died"), puts it in
// the box's cgroup, and only then hands it its config: nothing the plugin
// runs can start outside the limits.
func (r *boxRunner) Start(context.Context) error {
	err := confine.StartOnForkThread(r.cmd)
	closeFiles(r.cmd)
	if err != nil {
		r.cfgW.Close()
		if r.proxyHost != nil {
			r.proxyHost.Close()
		}
		return fmt.Errorf("start plugin box %s: %w", r.profile.Name, err)
	}
	r.mu.Lock()
	r.pid = r.cmd.Process.Pid
	r.mu.Unlock()
	cg, err := confine.NewCgroup(r.box.CgroupParent, "plugin-"+safeName(r.profile.Name)+"-"+strconv.Itoa(r.pid), r.profile.Resources)
	if err != nil && !r.profile.Resources.AllowUnlimited {
		return r.abort(fmt.Errorf("plugin %s: %w", r.profile.Name, err))
	}
	if err == nil {
		r.mu.Lock()
		r.cg = cg
		r.mu.Unlock()
		if err := cg.Place(r.pid); err != nil {
			return r.abort(fmt.Errorf("plugin %s: %w", r.profile.Name, err))
		}
	} else {
		r.logger.Warn("plugin runs without cgroup limits (resources.allow_unlimited)", "error", err)
	}
	_, err = r.cfgW.Write(r.cfgBuf)
	r.cfgW.Close()
	if err != nil {
		return r.abort(fmt.Errorf("plugin box %s: send config: %w", r.profile.Name, err))
	}
	if r.proxyHost != nil {
		if err := r.serveProxy(); err != nil {
			return r.abort(fmt.Errorf("plugin box %s: %w", r.profile.Name, err))
		}
	}
	r.logger.Debug("plugin box started", "pid", r.pid, "network", r.profile.Network.String())
	return nil
}

// serveProxy receives the proxy listener the init stage created inside the
// box's network namespace and hands it to Profile.Egress until the box
// stops. The init stage sends it before building the view; if the stage
// dies first, its end of the pair closes and the read ends.
func (r *boxRunner) serveProxy() error {
	defer func() { r.proxyHost.Close() }()
	fc, err := net.FileConn(r.proxyHost)
	if err != nil {
		return fmt.Errorf("proxy socket: %w", err)
	}
	defer fc.Close()
	uc, ok := fc.(*net.UnixConn)
	if !ok {
		return errors.New("proxy socket is not a unix socket")
	}
	n := 1
	if r.profile.Network == NetworkForward {
		n = len(r.profile.Forwards)
	}
	lns, err := receiveListeners(uc, n)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.mu.Lock()
	r.stopEgress = cancel
	r.mu.Unlock()
	if r.profile.Network == NetworkForward {
		go serveForwards(ctx, r.profile, lns, r.logger.Warn)
		return nil
	}
	go func() {
		defer lns[0].Close()
		r.profile.Egress(ctx, lns[0])
	}()
	return nil
}

// abort stops a box that failed to start and returns err with what the
// init stage wrote to stderr (its reason, or a panic) before it died:
// go-plugin reads stderr only from a started plugin, so without this the
// reason would be lost.
func (r *boxRunner) abort(err error) error {
	if r.proxyHost != nil {
		_ = r.proxyHost.Close() // a second close is harmless
	}
	_ = r.cmd.Process.Kill()
	said := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(r.stderr, 64<<10))
		said <- b
	}()
	var out []byte
	select {
	case out = <-said:
	case <-time.After(2 * time.Second): // a descendant still holds the pipe
	}
	_ = r.cmd.Wait()
	r.cleanup()
	if tail := lastLines(string(out), 10); tail != "" {
		return fmt.Errorf("%w; the plugin box said:\n%s", err, tail)
	}
	return err
}

// lastLines is the last n non-empty lines of s, each indented.
func lastLines(s string, n int) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimRight(l, "\r "); l != "" {
			lines = append(lines, "  "+l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// cleanup kills whatever is left in the cgroup (the pid namespace already
// took the tree with its init) and removes it.
func (r *boxRunner) cleanup() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cleaned {
		return
	}
	r.cleaned = true
	if r.stopEgress != nil {
		r.stopEgress()
	}
	if r.cg != nil {
		r.cg.Kill()
		if err := r.cg.Remove(); err != nil {
			r.logger.Warn("could not remove plugin cgroup", "error", err)
		}
	}
}

func (r *boxRunner) Wait(context.Context) error {
	err := r.cmd.Wait()
	r.cleanup()
	return err
}

func (r *boxRunner) Kill(context.Context) error {
	if r.cmd.Process == nil {
		return nil
	}
	if err := r.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	return nil
}

func (r *boxRunner) Stdout() io.ReadCloser { return r.stdout }
func (r *boxRunner) Stderr() io.ReadCloser { return r.stderr }
func (r *boxRunner) Name() string          { return r.profile.Binary }

func (r *boxRunner) ID() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strconv.Itoa(r.pid)
}

func (r *boxRunner) Diagnose(context.Context) string {
	return fmt.Sprintf("plugin %s ran confined (network %s); a plugin that needs more access than its profile grants fails here: read its log above, then name in its config the paths it must see and the URLs it must reach, or, as a last resort, set confine = false on its block (a daemon runs it only with --allow-unconfined-plugins)", r.profile.Name, r.profile.Network)
}

// The socket paths are the same on both sides of the box.
func (r *boxRunner) PluginToHost(n, a string) (string, string, error) { return n, a, nil }
func (r *boxRunner) HostToPlugin(n, a string) (string, string, error) { return n, a, nil }

func safeName(s string) string {
	out := []byte(s)
	for i, c := range out {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			out[i] = '_'
		}
	}
	return string(out)
}
