package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/nemoclave/nemoclave/sandbox"
	"github.com/nemoclave/nemoclave/sandbox/confine"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"
	"k8s.io/streaming/pkg/httpstream"
)

// Exec and Attach go through pods/exec (the daemon needs create on
// pods/exec). The command runs as "nemoclave sandbox-supervisor exec", which
// confines itself exactly like the agent before it execs the command, so
// an extra process never has more than the agent.

// execArgv wraps argv in the in-pod supervisor.
func (d *Driver) execArgv(argv []string, env map[string]string) ([]string, error) {
	if len(argv) == 0 || argv[0] == "" {
		return nil, errors.New("exec: no command")
	}
	out := []string{d.opts.SupervisorPath, SupervisorCommand, "exec"}
	keys := make([]string, 0, len(env))
	for k := range env {
		if err := confine.CheckEnvName(k); err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, "--env", k+"="+env[k])
	}
	return append(append(out, "--"), argv...), nil
}

func (d *Driver) executor(ctx context.Context, name string, opts *corev1.PodExecOptions) (remotecommand.Executor, error) {
	if d.opts.Config == nil {
		return nil, errors.New("kubernetes driver: exec needs the REST config (Options.Config)")
	}
	info, err := d.Status(ctx, name)
	if err != nil {
		return nil, err
	}
	if info.State != sandbox.StateRunning {
		return nil, fmt.Errorf("%w: %s is %s", sandbox.ErrNotRunning, name, info.State)
	}
	req := d.opts.Client.CoreV1().RESTClient().Post().Resource("pods").Namespace(d.opts.Namespace).
		Name(objectName(name)).SubResource("exec").VersionedParams(opts, scheme.ParameterCodec)
	ws, err := remotecommand.NewWebSocketExecutor(d.opts.Config, "GET", req.URL().String())
	if err != nil {
		return nil, err
	}
	spdy, err := remotecommand.NewSPDYExecutor(d.opts.Config, "POST", req.URL())
	if err != nil {
		return nil, err
	}
	// Fall back to SPDY only when the WebSocket upgrade itself failed (an
	// older API server or a proxy in between): after any other error the
	// command may already have run, and must not run twice.
	return remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
}

// Exec runs a confined command in the sandbox pod.
func (d *Driver) Exec(ctx context.Context, name string, req sandbox.ExecRequest) (sandbox.Process, error) {
	argv, err := d.execArgv(req.Command, req.Env)
	if err != nil {
		return nil, err
	}
	ex, err := d.executor(ctx, name, &corev1.PodExecOptions{
		Container: "sandbox", Command: argv, Stdin: req.Stdin != nil, Stdout: req.Stdout != nil, Stderr: req.Stderr != nil,
	})
	if err != nil {
		return nil, err
	}
	p := &process{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: req.Stdin, Stdout: req.Stdout, Stderr: req.Stderr})
	}()
	return p, nil
}

// Attach runs a confined command on a terminal in the sandbox pod.
func (d *Driver) Attach(ctx context.Context, name string, req sandbox.AttachRequest) (sandbox.Terminal, error) {
	argv, err := d.execArgv(req.Command, req.Env)
	if err != nil {
		return nil, err
	}
	ex, err := d.executor(ctx, name, &corev1.PodExecOptions{Container: "sandbox", Command: argv, Stdin: true, Stdout: true, TTY: true})
	if err != nil {
		return nil, err
	}
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	t := &terminal{process: process{done: make(chan struct{})}, in: inW, out: outR, sizes: make(chan remotecommand.TerminalSize, 4)}
	if req.Rows > 0 && req.Cols > 0 {
		t.sizes <- remotecommand.TerminalSize{Width: req.Cols, Height: req.Rows}
	}
	go func() {
		defer close(t.done)
		t.err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: inR, Stdout: outW, Tty: true, TerminalSizeQueue: t})
		outW.CloseWithError(io.EOF)
		inR.Close()
	}()
	return t, nil
}

// Logs streams the agent's output so far (pods/log).
func (d *Driver) Logs(ctx context.Context, name string) (io.ReadCloser, error) {
	if _, err := d.Status(ctx, name); err != nil {
		return nil, err
	}
	rc, err := d.opts.Client.CoreV1().Pods(d.opts.Namespace).GetLogs(objectName(name), &corev1.PodLogOptions{Container: "sandbox"}).Stream(ctx)
	if err != nil {
		return nil, d.apiError("read the sandbox's logs (the pod must have been scheduled and started)", err)
	}
	return rc, nil
}

// process is a command running through pods/exec.
type process struct {
	done chan struct{}
	err  error
}

// Wait returns the command's exit code; an error means the stream broke
// before the command reported one.
func (p *process) Wait(ctx context.Context) (int, error) {
	select {
	case <-ctx.Done():
		return -1, ctx.Err()
	case <-p.done:
	}
	if p.err == nil {
		return 0, nil
	}
	var ce utilexec.CodeExitError
	if errors.As(p.err, &ce) {
		return ce.ExitStatus(), nil
	}
	return -1, fmt.Errorf("exec in the sandbox pod: %w", p.err)
}

type terminal struct {
	process
	in    *io.PipeWriter
	out   *io.PipeReader
	sizes chan remotecommand.TerminalSize
}

func (t *terminal) Read(p []byte) (int, error)  { return t.out.Read(p) }
func (t *terminal) Write(p []byte) (int, error) { return t.in.Write(p) }
func (t *terminal) Close() error {
	t.in.Close()
	return t.out.Close()
}

// Resize queues a new size; the oldest pending one is dropped when the
// stream is slower than the user's window.
func (t *terminal) Resize(rows, cols uint16) error {
	s := remotecommand.TerminalSize{Width: cols, Height: rows}
	select {
	case t.sizes <- s:
	default:
		select {
		case <-t.sizes:
		default:
		}
		t.sizes <- s
	}
	return nil
}

// Next implements remotecommand.TerminalSizeQueue.
func (t *terminal) Next() *remotecommand.TerminalSize {
	select {
	case s := <-t.sizes:
		return &s
	case <-t.done:
		return nil
	}
}

// Console is not offered for pods: the agent container's stdin is not
// opened (the pod spec sets no stdin), so there is nothing to type into.
// Shells and commands on a terminal go through Attach.
func (d *Driver) Console(ctx context.Context, name string) (sandbox.Console, error) {
	if _, err := d.Status(ctx, name); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("%s: %w: the kubernetes driver does not connect to a pod agent's input; open a shell with `nemoclave sandbox connect %s --shell`", name, sandbox.ErrNoConsole, name)
}
