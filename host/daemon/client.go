package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "github.com/nemoclave/nemoclave/host/api/daemonpb"
	"github.com/nemoclave/nemoclave/version"
)

// Client talks to the daemon.
type Client struct {
	conn *grpc.ClientConn
	rpc  pb.DaemonClient
	Home string
	// Daemon is what the daemon answered to the connection's Ping.
	Daemon *pb.PingResponse
	// Warning, when set, says the daemon is a different build than this
	// CLI and was left running (it is busy, or autostart was off), with
	// the command that restarts it. The CLI prints it once.
	Warning string
	// Remote is the host:port of a remote daemon (`nemoclave login`);
	// empty for the local socket.
	Remote string
}

// ErrNotRunning is returned by Connect without autostart when no daemon
// answers.
var ErrNotRunning = errors.New("the nemoclave daemon is not running")

// Connect returns a client of the daemon serving home. With autostart, a
// missing daemon is started (as `nemoclave daemon`, detached, logging to
// $NEMOCLAVE_HOME/logs/daemon.log) and waited for.
//
// After `nemoclave login` (or with NEMOCLAVE_SERVER set) the client is the
// remote daemon's instead, over TLS with the login's bearer token; a
// remote daemon is never started or restarted by a CLI.
func Connect(ctx context.Context, home string, autostart bool) (*Client, error) {
	l, err := LoadLogin(home)
	if err != nil {
		return nil, err
	}
	if l != nil {
		c, err := DialRemote(ctx, home, l)
		// Only versions are compared: two machines' builds of one version
		// differ in build id without differing in API.
		if err == nil && c.Daemon.Version != version.Version {
			c.Warning = fmt.Sprintf("warning: the remote daemon %s is nemoclave %s but this CLI is %s", l.Server, VersionString(c.Daemon.Version, c.Daemon.BuildId), Self())
		}
		return c, err
	}
	c, err := dial(ctx, home)
	if err == nil {
		return c.checkBuild(ctx, autostart)
	}
	return connectOrStart(ctx, home, autostart)
}

// checkBuild compares the daemon's version and build id with this
// binary's. A mismatched daemon that runs no sandbox is restarted (when
// autostart allows starting one); a busy one is left alone with a Warning,
// because restarting it would stop its sandboxes.
func (c *Client) checkBuild(ctx context.Context, autostart bool) (*Client, error) {
	d := c.Daemon
	if d.Version == version.Version && (d.BuildId == BuildID() || d.BuildId == "" || BuildID() == "") {
		return c, nil
	}
	theirs, ours := VersionString(d.Version, d.BuildId), Self()
	switch {
	case d.ActiveSandboxes > 0:
		c.Warning = fmt.Sprintf("warning: the daemon (pid %d) is nemoclave %s but this CLI is %s; it runs %d sandbox(es), so it was left running. "+
			"When they may stop, run `nemoclave daemon stop` (it stops them); the next command starts a matching daemon.", d.Pid, theirs, ours, d.ActiveSandboxes)
		return c, nil
	case !autostart:
		c.Warning = fmt.Sprintf("warning: the daemon (pid %d) is nemoclave %s but this CLI is %s; the next command that needs the daemon restarts it (it runs no sandbox).", d.Pid, theirs, ours)
		return c, nil
	}
	if _, err := c.rpc.Shutdown(ctx, &pb.ShutdownRequest{}); err != nil {
		c.Close()
		return nil, fmt.Errorf("restart the daemon (nemoclave %s) for this CLI (%s): %w; stop it with `nemoclave daemon stop`", theirs, ours, Err(err))
	}
	c.Close()
	// The old daemon removes its socket as it exits: the new one may only
	// listen once the old process is gone, or that removal would take the
	// new socket with it.
	deadline := time.Now().Add(15 * time.Second)
	for syscall.Kill(int(d.Pid), 0) == nil {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the daemon (pid %d, nemoclave %s) did not exit within 15s of being asked to, so this CLI (%s) cannot start its own; stop it with `kill %d`", d.Pid, theirs, ours, d.Pid)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
	}
	return start(ctx, c.Home)
}

// start starts a daemon for home and waits until it answers.
func start(ctx context.Context, home string) (*Client, error) { return connectOrStart(ctx, home, true) }

// connectOrStart waits for the daemon of home, starting one (with
// autostart) unless another holds the daemon lock: a daemon that holds it
// is alive, only slow (reconciling, or a loaded machine), so it is waited
// for rather than doubled. One that lets the lock go (it was stopping) is
// replaced.
func connectOrStart(ctx context.Context, home string, autostart bool) (*Client, error) {
	held, pid := LockHeld(home)
	if !autostart && !held {
		return nil, ErrNotRunning
	}
	started := false
	wait := 2 * time.Millisecond
	deadline := time.Now().Add(60 * time.Second)
	for {
		if !held && !started {
			if !autostart {
				return nil, ErrNotRunning
			}
			if err := startDaemon(home); err != nil {
				return nil, err
			}
			started = true
			deadline = time.Now().Add(15 * time.Second)
		}
		c, err := dial(ctx, home)
		if err == nil {
			return c, nil
		}
		if time.Now().After(deadline) {
			if held {
				return nil, fmt.Errorf("the daemon (pid %s) holds %s but did not answer within 60s: %w; see %s, or stop it with `kill %s` and retry", pid, LockPath(home), err, filepath.Join(home, "logs", "daemon.log"), pid)
			}
			return nil, fmt.Errorf("the daemon did not come up within 15s: %w (see %s)", err, filepath.Join(home, "logs", "daemon.log"))
		}
		if held {
			held, pid = LockHeld(home)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		// A daemon just started answers within tens of milliseconds:
		// look often at first, then every 25ms.
		wait = min(2*wait, 25*time.Millisecond)
	}
}

func dial(ctx context.Context, home string) (*Client, error) {
	sock := SocketPath(home)
	if _, err := os.Stat(sock); err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	c := &Client{conn: conn, rpc: pb.NewDaemonClient(conn), Home: home}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if c.Daemon, err = c.rpc.Ping(pctx, &pb.PingRequest{}, grpc.WaitForReady(false)); err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

func startDaemon(home string) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("start daemon: %w", err)
	}
	logDir := filepath.Join(home, "logs")
	if err := os.MkdirAll(logDir, 0o700); err != nil {
		return fmt.Errorf("start daemon: %w", err)
	}
	logf, err := os.OpenFile(filepath.Join(logDir, "daemon.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("start daemon: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(self, "daemon", "--home", home)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start daemon: %w", err)
	}
	return cmd.Process.Release()
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Err turns an RPC error into the daemon's own message.
func Err(err error) error {
	if err == nil {
		return nil
	}
	if s, ok := status.FromError(err); ok {
		if s.Code() == codes.Unavailable {
			return fmt.Errorf("lost the connection to the daemon: %s (is it still running? see $NEMOCLAVE_HOME/logs/daemon.log)", s.Message())
		}
		return errors.New(s.Message())
	}
	return err
}

// Ping returns the daemon's pid and version.
func (c *Client) Ping(ctx context.Context) (*pb.PingResponse, error) {
	r, err := c.rpc.Ping(ctx, &pb.PingRequest{})
	return r, Err(err)
}

// Shutdown asks the daemon to stop every sandbox and exit.
func (c *Client) Shutdown(ctx context.Context) error {
	_, err := c.rpc.Shutdown(ctx, &pb.ShutdownRequest{})
	return Err(err)
}

// ListSandboxes lists the sandboxes the daemon knows (also those left by
// an earlier daemon).
func (c *Client) ListSandboxes(ctx context.Context) ([]*pb.Sandbox, error) {
	r, err := c.rpc.ListSandboxes(ctx, &pb.ListSandboxesRequest{})
	if err != nil {
		return nil, Err(err)
	}
	return r.Sandboxes, nil
}

// GetSandbox shows one sandbox.
func (c *Client) GetSandbox(ctx context.Context, name string) (*pb.Sandbox, error) {
	r, err := c.rpc.GetSandbox(ctx, &pb.SandboxRequest{Name: name})
	return r, Err(err)
}

// DeleteSandbox stops a sandbox, kills everything it runs and forgets it.
func (c *Client) DeleteSandbox(ctx context.Context, name string) (*pb.DeleteSandboxResponse, error) {
	r, err := c.rpc.DeleteSandbox(ctx, &pb.SandboxRequest{Name: name})
	return r, Err(err)
}

// GetPolicy returns a sandbox's policy: view "effective" (or ""), "full"
// (with the base policy, revisions, answers and grants) or "base".
func (c *Client) GetPolicy(ctx context.Context, sandbox, view string) (*pb.GetPolicyResponse, error) {
	r, err := c.rpc.GetPolicy(ctx, &pb.GetPolicyRequest{Sandbox: sandbox, View: view})
	return r, Err(err)
}

// SetPolicy replaces a sandbox's network policy (policyJSON, the JSON of
// policy.Policy as `policy get -o json` prints it) and/or adds presets.
func (c *Client) SetPolicy(ctx context.Context, sandbox string, policyJSON []byte, presets []string) (*pb.SetPolicyResponse, error) {
	r, err := c.rpc.SetPolicy(ctx, &pb.SetPolicyRequest{Sandbox: sandbox, PolicyJson: policyJSON, AddPresets: presets})
	return r, Err(err)
}

// ListApprovals lists pending egress approvals, of one sandbox or ("")
// of all.
func (c *Client) ListApprovals(ctx context.Context, sandbox string) ([]*pb.Approval, error) {
	r, err := c.rpc.ListApprovals(ctx, &pb.ListApprovalsRequest{Sandbox: sandbox})
	if err != nil {
		return nil, Err(err)
	}
	return r.Approvals, nil
}

// AnswerApproval answers a pending egress approval and returns the
// recorded answer.
func (c *Client) AnswerApproval(ctx context.Context, id string, allow bool, scope string) (*pb.ApprovalAnswer, error) {
	r, err := c.rpc.AnswerApproval(ctx, &pb.AnswerApprovalRequest{Id: id, Allow: allow, Scope: scope})
	return r, Err(err)
}

// InferenceStatus returns the daemon's inference default, each running
// sandbox's routes, provider health and budget use (of one sandbox, or ""
// for all), and the recorded usage.
func (c *Client) InferenceStatus(ctx context.Context, sandbox string) (*pb.InferenceStatusResponse, error) {
	r, err := c.rpc.InferenceStatus(ctx, &pb.InferenceStatusRequest{Sandbox: sandbox})
	return r, Err(err)
}

// InferenceSet changes the default route of running sandboxes without a
// restart.
func (c *Client) InferenceSet(ctx context.Context, sandbox, provider, model string) (*pb.InferenceSetResponse, error) {
	r, err := c.rpc.InferenceSet(ctx, &pb.InferenceSetRequest{Sandbox: sandbox, Provider: provider, Model: model})
	return r, Err(err)
}

// WatchApprovals calls fn with each pending-approval snapshot until ctx
// ends or the daemon closes the stream.
func (c *Client) WatchApprovals(ctx context.Context, sandbox string, fn func([]*pb.Approval)) error {
	st, err := c.rpc.WatchApprovals(ctx, &pb.ListApprovalsRequest{Sandbox: sandbox})
	if err != nil {
		return Err(err)
	}
	for {
		r, err := st.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return Err(err)
		}
		fn(r.Approvals)
	}
}

// Run runs a blueprint, reporting events until the run ends (attached) or
// the sandboxes are started (detached). Cancelling ctx (Ctrl-C) makes the
// daemon stop and clean up an attached run.
func (c *Client) Run(ctx context.Context, req RunRequest, ev RunEvents) error {
	st, err := c.rpc.Run(ctx, &pb.RunRequest{Path: req.Path, Vars: req.Vars, VarFiles: req.VarFiles, VarEnv: req.VarEnv, Detach: req.Detach, Replace: req.Replace,
		Stdin: req.Stdin, Rows: uint32(req.Rows), Cols: uint32(req.Cols), ReattachPlugins: req.ReattachPlugins, AttachAgent: req.AttachAgent, Upload: req.Upload,
		ThisReplicaOnly: req.ThisReplicaOnly})
	if err != nil {
		return Err(err)
	}
	for {
		e, err := st.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return Err(err)
		}
		switch v := e.Event.(type) {
		case *pb.RunEvent_Step:
			ev.Step(Step{Name: v.Step.Name, Phase: v.Step.Phase, DurationMS: v.Step.DurationMs, Detail: v.Step.Detail})
		case *pb.RunEvent_Output:
			ev.Output(v.Output)
		case *pb.RunEvent_Exit:
			ev.Exit(v.Exit.Sandbox, int(v.Exit.Code), v.Exit.Reason)
		case *pb.RunEvent_Console:
			ev.Console(v.Console.Sandbox, v.Console.Tty)
		}
	}
}

// Logs copies a log to w.
func (c *Client) Logs(ctx context.Context, req LogsRequest, w io.Writer) error {
	st, err := c.rpc.Logs(ctx, &pb.LogsRequest{Sandbox: req.Sandbox, Source: req.Source, Follow: req.Follow, Tail: int32(req.Tail)})
	if err != nil {
		return Err(err)
	}
	for {
		chunk, err := st.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) || status.Code(err) == codes.Canceled {
				return nil
			}
			return Err(err)
		}
		if _, err := w.Write(chunk.Data); err != nil {
			return err
		}
	}
}

// Exec runs a command in a sandbox, streaming stdin/stdout/stderr, and
// returns its exit code.
func (c *Client) Exec(ctx context.Context, req ExecRequest, eio ExecIO) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := c.rpc.Exec(ctx)
	if err != nil {
		return -1, Err(err)
	}
	if err := st.Send(&pb.ExecInput{Input: &pb.ExecInput_Start{Start: &pb.ExecStart{
		Sandbox: req.Sandbox, Command: req.Command, Tty: req.TTY, Rows: uint32(req.Rows), Cols: uint32(req.Cols), Env: req.Env,
	}}}); err != nil {
		return -1, Err(err)
	}
	// A gRPC stream allows one sender at a time.
	var sendMu sync.Mutex
	send := func(in *pb.ExecInput) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return st.Send(in)
	}
	go func() {
		if eio.Stdin != nil {
			buf := make([]byte, 32*1024)
			for {
				n, err := eio.Stdin.Read(buf)
				if n > 0 {
					if send(&pb.ExecInput{Input: &pb.ExecInput_Stdin{Stdin: append([]byte(nil), buf[:n]...)}}) != nil {
						return
					}
				}
				if err != nil {
					break
				}
			}
		}
		_ = send(&pb.ExecInput{Input: &pb.ExecInput_CloseStdin{CloseStdin: true}})
	}()
	if eio.Resize != nil {
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case sz := <-eio.Resize:
					_ = send(&pb.ExecInput{Input: &pb.ExecInput_Resize{Resize: &pb.Resize{Rows: uint32(sz[0]), Cols: uint32(sz[1])}}})
				}
			}
		}()
	}
	for {
		out, err := st.Recv()
		if err != nil {
			return -1, Err(err)
		}
		switch v := out.Output.(type) {
		case *pb.ExecOutput_Stdout:
			if eio.Stdout != nil {
				eio.Stdout.Write(v.Stdout)
			}
		case *pb.ExecOutput_Stderr:
			if eio.Stderr != nil {
				eio.Stderr.Write(v.Stderr)
			}
		case *pb.ExecOutput_ExitCode:
			return int(v.ExitCode), nil
		}
	}
}
