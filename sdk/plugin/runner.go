package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"
)

// stderrTail is how much of a plugin's stderr is kept to explain a failed
// launch.
const stderrTail = 4 << 10

// cmdRunner runs the plugin as a child process, like go-plugin's own
// runner, and also keeps the tail of its stderr and its exit status, so a
// plugin that dies during the handshake is reported with its own words
// instead of "Failed to read any lines from plugin's stdout".
type cmdRunner struct {
	logger hclog.Logger
	cmd    *exec.Cmd
	name   string
	stdout io.ReadCloser
	stderr io.ReadCloser

	mu     sync.Mutex
	tail   []byte
	exited chan struct{}
	status string
}

var _ runner.Runner = (*cmdRunner)(nil)

func newCmdRunner(logger hclog.Logger, cmd *exec.Cmd, name string) (*cmdRunner, error) {
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	r := &cmdRunner{logger: logger, cmd: cmd, name: name, stdout: stdout, exited: make(chan struct{})}
	r.stderr = &teeCloser{r: stderr, w: r}
	return r, nil
}

// Write keeps the last stderrTail bytes of stderr.
func (r *cmdRunner) Write(p []byte) (int, error) {
	r.mu.Lock()
	r.tail = append(r.tail, p...)
	if len(r.tail) > stderrTail {
		r.tail = r.tail[len(r.tail)-stderrTail:]
	}
	r.mu.Unlock()
	return len(p), nil
}

type teeCloser struct {
	r io.ReadCloser
	w io.Writer
}

func (t *teeCloser) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		_, _ = t.w.Write(p[:n])
	}
	return n, err
}

func (t *teeCloser) Close() error { return t.r.Close() }

func (r *cmdRunner) Start(context.Context) error {
	r.logger.Debug("starting plugin", "path", r.name, "args", r.cmd.Args)
	if err := r.cmd.Start(); err != nil {
		return err
	}
	r.logger.Debug("plugin started", "path", r.name, "pid", r.cmd.Process.Pid)
	return nil
}

func (r *cmdRunner) Wait(context.Context) error {
	err := r.cmd.Wait()
	r.mu.Lock()
	if r.status == "" {
		r.status = "exited with status 0"
		if r.cmd.ProcessState != nil {
			r.status = describeExit(r.cmd.ProcessState)
		}
		close(r.exited)
	}
	r.mu.Unlock()
	return err
}

func describeExit(ps *os.ProcessState) string {
	s := ps.String() // "exit status 2", "signal: killed"
	if strings.HasPrefix(s, "signal: ") {
		return "was killed by " + strings.TrimPrefix(s, "signal: ")
	}
	return "exited with " + s
}

func (r *cmdRunner) Kill(context.Context) error {
	if r.cmd.Process == nil {
		return nil
	}
	if err := r.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	return nil
}

func (r *cmdRunner) Stdout() io.ReadCloser { return r.stdout }
func (r *cmdRunner) Stderr() io.ReadCloser { return r.stderr }
func (r *cmdRunner) Name() string          { return r.name }

func (r *cmdRunner) ID() string {
	if r.cmd.Process == nil {
		return ""
	}
	return fmt.Sprint(r.cmd.Process.Pid)
}

func (r *cmdRunner) Diagnose(context.Context) string { return "" }

func (r *cmdRunner) PluginToHost(n, a string) (string, string, error) { return n, a, nil }
func (r *cmdRunner) HostToPlugin(n, a string) (string, string, error) { return n, a, nil }

// explain describes how the process ended and what it wrote to stderr,
// waiting up to wait for it to exit (a failed handshake usually means the
// plugin is exiting).
func (r *cmdRunner) explain(wait time.Duration) string {
	select {
	case <-r.exited:
	case <-time.After(wait):
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	if r.status != "" {
		b.WriteString("the plugin " + r.status)
	} else {
		b.WriteString("the plugin was still running")
	}
	tail := strings.TrimSpace(string(r.tail))
	if tail == "" {
		b.WriteString(" and wrote nothing to stderr")
		return b.String()
	}
	lines := strings.Split(tail, "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	b.WriteString("; the end of its stderr:\n    " + strings.Join(lines, "\n    "))
	return b.String()
}

// useRunner makes go-plugin run cmd through a cmdRunner; socketDir (may be
// empty) is where go-plugin creates the plugin's private socket directory.
func useRunner(cfg *goplugin.ClientConfig, cmd *exec.Cmd, name, socketDir string) **cmdRunner {
	var made *cmdRunner
	// go-plugin takes either Cmd or RunnerFunc; with RunnerFunc it builds
	// an empty command holding the handshake environment, which is added
	// to ours here.
	cfg.Cmd = nil
	if socketDir != "" {
		cfg.UnixSocketConfig = &goplugin.UnixSocketConfig{TempDir: socketDir}
	}
	cfg.RunnerFunc = func(l hclog.Logger, spec *exec.Cmd, _ string) (runner.Runner, error) {
		cmd.Env = append(cmd.Env, spec.Env...)
		cmd.Stdin = spec.Stdin
		r, err := newCmdRunner(l, cmd, name)
		made = r
		return r, err
	}
	return &made
}
