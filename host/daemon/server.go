package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/nemoclave/nemoclave/host/api/daemonpb"
	"github.com/nemoclave/nemoclave/version"
)

// SocketPath is the control socket under home.
func SocketPath(home string) string { return filepath.Join(home, "run", "nemoclave.sock") }

// Server is a running daemon endpoint.
type Server struct {
	pb.UnimplementedDaemonServer
	home    string
	backend Backend
	grpc    *grpc.Server
	ln      net.Listener
	audit   *controlAudit

	// remote serves the same API on TCP with TLS and OIDC (ListenRemote).
	remote   *grpc.Server
	remoteLn net.Listener
	access   *Access

	stopOnce sync.Once
	stopped  chan struct{}
}

// Listen creates the control socket. It refuses to take over a socket that
// another live daemon answers on.
func Listen(home string, backend Backend) (*Server, error) {
	sock := SocketPath(home)
	if err := os.MkdirAll(filepath.Dir(sock), 0o700); err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	if err := os.Chmod(filepath.Dir(sock), 0o700); err != nil {
		return nil, err
	}
	if c, err := net.Dial("unix", sock); err == nil {
		c.Close()
		return nil, fmt.Errorf("a nemoclave daemon is already serving %s; stop it with `nemoclave daemon stop`", sock)
	}
	_ = os.Remove(sock) // stale socket of a daemon that died
	old := syscall.Umask(0o177)
	ln, err := net.Listen("unix", sock)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("daemon: listen on %s: %w", sock, err)
	}
	if err := os.Chmod(sock, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	audit, err := openControlAudit(home)
	if err != nil {
		ln.Close()
		return nil, err
	}
	s := &Server{home: home, backend: backend, ln: ln, audit: audit, stopped: make(chan struct{})}
	// The socket's caller is its owner and holds every right; the guard
	// only names it (local:<uid>) for the audit log.
	g := &guard{s: s}
	s.grpc = grpc.NewServer(grpc.Creds(peerCreds{}), grpc.MaxRecvMsgSize(maxRecvMsg), grpc.UnaryInterceptor(g.unary), grpc.StreamInterceptor(g.stream))
	s.registerOn(s.grpc)
	return s, nil
}

func (s *Server) registerOn(g *grpc.Server) { pb.RegisterDaemonServer(g, s) }

// Serve serves until ctx ends or a client asks for Shutdown, then closes the
// backend (stopping every sandbox and plugin).
func (s *Server) Serve(ctx context.Context) error {
	errc := make(chan error, 2)
	go func() { errc <- s.grpc.Serve(s.ln) }()
	if s.remote != nil {
		go func() { errc <- s.remote.Serve(s.remoteLn) }()
	}
	var serveErr error
	select {
	case <-ctx.Done():
	case <-s.stopped:
	case serveErr = <-errc:
	}
	if s.remote != nil {
		// Remote streams (a follow of logs, a watch) would hold a graceful
		// stop open; remote callers reconnect to the next daemon.
		s.remote.Stop()
	}
	if serveErr != nil {
		s.grpc.Stop()
		s.audit.close()
		return serveErr
	}
	s.grpc.GracefulStop()
	_ = os.Remove(SocketPath(s.home))
	err := s.backend.Close(context.Background())
	s.audit.close()
	return err
}

// LoginInfo tells a CLI which issuer and client to sign in with.
func (s *Server) LoginInfo(context.Context, *pb.LoginInfoRequest) (*pb.LoginInfoResponse, error) {
	if s.access == nil {
		return &pb.LoginInfoResponse{}, nil
	}
	o := s.access.OIDC
	return &pb.LoginInfoResponse{Issuer: o.Issuer, ClientId: o.ClientID, Audience: o.Audience, Scopes: o.Scopes}, nil
}

func (s *Server) Ping(ctx context.Context, _ *pb.PingRequest) (*pb.PingResponse, error) {
	r := &pb.PingResponse{Version: version.Version, Pid: int32(os.Getpid()), Home: s.home, BuildId: BuildID()}
	if c := CallerFrom(ctx); c != nil {
		r.Caller, r.Role = c.Subject, c.Role().String()
	}
	if a, ok := s.backend.(ActiveCounter); ok {
		r.ActiveSandboxes = int32(a.ActiveSandboxes())
	}
	return r, nil
}

func (s *Server) Shutdown(context.Context, *pb.ShutdownRequest) (*pb.ShutdownResponse, error) {
	s.stopOnce.Do(func() { close(s.stopped) })
	return &pb.ShutdownResponse{}, nil
}

// rpcError keeps the backend's message (it says what to do) and maps
// context errors to their codes.
func rpcError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	return status.Error(codes.Unknown, err.Error())
}

func (s *Server) ListSandboxes(ctx context.Context, _ *pb.ListSandboxesRequest) (*pb.ListSandboxesResponse, error) {
	list, err := s.backend.ListSandboxes(ctx)
	if err != nil {
		return nil, rpcError(err)
	}
	return &pb.ListSandboxesResponse{Sandboxes: list}, nil
}

func (s *Server) GetSandbox(ctx context.Context, r *pb.SandboxRequest) (*pb.Sandbox, error) {
	return answer(s.backend.GetSandbox(ctx, r.Name))
}

func (s *Server) DeleteSandbox(ctx context.Context, r *pb.SandboxRequest) (*pb.DeleteSandboxResponse, error) {
	return answer(s.backend.DeleteSandbox(ctx, r.Name))
}

func (s *Server) GetPolicy(ctx context.Context, r *pb.GetPolicyRequest) (*pb.GetPolicyResponse, error) {
	return answer(s.backend.GetPolicy(ctx, r.Sandbox, r.View))
}

func (s *Server) SetPolicy(ctx context.Context, r *pb.SetPolicyRequest) (*pb.SetPolicyResponse, error) {
	return answer(s.backend.SetPolicy(ctx, r.Sandbox, r.PolicyJson, r.AddPresets))
}

func (s *Server) ListApprovals(ctx context.Context, r *pb.ListApprovalsRequest) (*pb.ListApprovalsResponse, error) {
	list, err := s.backend.ListApprovals(ctx, r.Sandbox)
	if err != nil {
		return nil, rpcError(err)
	}
	return &pb.ListApprovalsResponse{Approvals: list}, nil
}

func (s *Server) WatchApprovals(r *pb.ListApprovalsRequest, stream pb.Daemon_WatchApprovalsServer) error {
	return rpcError(s.backend.WatchApprovals(stream.Context(), r.Sandbox, func(list []*pb.Approval) error {
		return stream.Send(&pb.ListApprovalsResponse{Approvals: list})
	}))
}

func (s *Server) AnswerApproval(ctx context.Context, r *pb.AnswerApprovalRequest) (*pb.ApprovalAnswer, error) {
	return answer(s.backend.AnswerApproval(ctx, r.Id, r.Allow, r.Scope))
}

func (s *Server) InferenceStatus(ctx context.Context, r *pb.InferenceStatusRequest) (*pb.InferenceStatusResponse, error) {
	return answer(s.backend.InferenceStatus(ctx, r.Sandbox))
}

func (s *Server) InferenceSet(ctx context.Context, r *pb.InferenceSetRequest) (*pb.InferenceSetResponse, error) {
	return answer(s.backend.InferenceSet(ctx, r.Sandbox, r.Provider, r.Model))
}

// answer sends the backend's message, or its error with its message kept.
// A backend that answers nothing without an error is a bug of the
// backend, reported as such rather than sent as an empty message.
func answer[M any](m *M, err error) (*M, error) {
	if err != nil {
		return nil, rpcError(err)
	}
	if m == nil {
		return nil, status.Error(codes.Internal, "the daemon's backend answered nothing (a bug: see $NEMOCLAVE_HOME/logs/daemon.log)")
	}
	return m, nil
}

// runEvents streams a run's events; sends are serialised.
type runEvents struct {
	mu     sync.Mutex
	stream pb.Daemon_RunServer
}

func (e *runEvents) send(ev *pb.RunEvent) {
	e.mu.Lock()
	defer e.mu.Unlock()
	_ = e.stream.Send(ev) // a gone client cancels the context; Run notices
}

func (e *runEvents) Step(st Step) {
	e.send(&pb.RunEvent{Event: &pb.RunEvent_Step{Step: &pb.Step{Name: st.Name, Phase: st.Phase, DurationMs: st.DurationMS, Detail: st.Detail}}})
}

func (e *runEvents) Output(b []byte) {
	e.send(&pb.RunEvent{Event: &pb.RunEvent_Output{Output: append([]byte(nil), b...)}})
}

func (e *runEvents) Exit(sb string, code int, reason string) {
	e.send(&pb.RunEvent{Event: &pb.RunEvent_Exit{Exit: &pb.Exit{Sandbox: sb, Code: int32(code), Reason: reason}}})
}

func (e *runEvents) Console(sb string, tty bool) {
	e.send(&pb.RunEvent{Event: &pb.RunEvent_Console{Console: &pb.Console{Sandbox: sb, Tty: tty}}})
}

func (s *Server) Run(r *pb.RunRequest, stream pb.Daemon_RunServer) error {
	req := RunRequest{Path: r.Path, Vars: r.Vars, VarFiles: r.VarFiles, VarEnv: r.VarEnv, Detach: r.Detach, Replace: r.Replace,
		Stdin: r.Stdin, Rows: uint16(r.Rows), Cols: uint16(r.Cols), ReattachPlugins: r.ReattachPlugins, AttachAgent: r.AttachAgent,
		HandRun: true, ThisReplicaOnly: r.ThisReplicaOnly}
	if req.ReattachPlugins != "" {
		// A debug plugin receives the run's plugin configuration,
		// credentials included: only the daemon's own user may point a run
		// at one, never a remote caller.
		if c := CallerFrom(stream.Context()); c != nil && !c.Local {
			return status.Errorf(codes.PermissionDenied, "NEMOCLAVE_REATTACH_PLUGINS is honoured for local callers only (a debug plugin receives the run's credentials); unset it, or run on the daemon's host")
		}
	}
	if r.Upload != nil {
		subject := "local"
		if c := CallerFrom(stream.Context()); c != nil {
			subject = c.Subject
		}
		if err := s.uploadInUse(stream.Context(), subject, r); err != nil {
			return status.Error(codes.FailedPrecondition, err.Error())
		}
		if err := resolveUpload(s.home, subject, r, &req); err != nil {
			return status.Error(codes.InvalidArgument, err.Error())
		}
		req.Upload = r.Upload
	} else if c := CallerFrom(stream.Context()); c != nil && !c.Local && r.Path == "" {
		return status.Error(codes.InvalidArgument, "a remote run needs the blueprint: the CLI uploads it (update the CLI)")
	}
	return rpcError(s.backend.Run(stream.Context(), req, &runEvents{stream: stream}))
}

// streamWriter turns writes into ExecOutput messages.
type streamWriter struct {
	mu     *sync.Mutex
	stream pb.Daemon_ExecServer
	stderr bool
}

func (w streamWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := &pb.ExecOutput{Output: &pb.ExecOutput_Stdout{Stdout: append([]byte(nil), b...)}}
	if w.stderr {
		out.Output = &pb.ExecOutput_Stderr{Stderr: append([]byte(nil), b...)}
	}
	if err := w.stream.Send(out); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (s *Server) Exec(stream pb.Daemon_ExecServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	start := first.GetStart()
	if start == nil {
		return status.Error(codes.InvalidArgument, "exec: the first message must be a start request")
	}
	stdinR, stdinW := io.Pipe()
	resize := make(chan [2]uint16, 4)
	go func() {
		defer stdinW.Close()
		for {
			in, err := stream.Recv()
			if err != nil {
				return
			}
			switch v := in.Input.(type) {
			case *pb.ExecInput_Stdin:
				if _, err := stdinW.Write(v.Stdin); err != nil {
					return
				}
			case *pb.ExecInput_Resize:
				select {
				case resize <- [2]uint16{uint16(v.Resize.Rows), uint16(v.Resize.Cols)}:
				default:
				}
			case *pb.ExecInput_CloseStdin:
				return
			}
		}
	}()
	var mu sync.Mutex
	code, err := s.backend.Exec(stream.Context(), ExecRequest{
		Sandbox: start.Sandbox, Command: start.Command, TTY: start.Tty,
		Rows: uint16(start.Rows), Cols: uint16(start.Cols), Env: start.Env,
	}, ExecIO{Stdin: stdinR, Stdout: streamWriter{&mu, stream, false}, Stderr: streamWriter{&mu, stream, true}, Resize: resize})
	if err != nil {
		return rpcError(err)
	}
	mu.Lock()
	defer mu.Unlock()
	return stream.Send(&pb.ExecOutput{Output: &pb.ExecOutput_ExitCode{ExitCode: int32(code)}})
}

type chunkWriter struct{ stream pb.Daemon_LogsServer }

func (w chunkWriter) Write(b []byte) (int, error) {
	if err := w.stream.Send(&pb.LogChunk{Data: append([]byte(nil), b...)}); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (s *Server) Logs(r *pb.LogsRequest, stream pb.Daemon_LogsServer) error {
	return rpcError(s.backend.Logs(stream.Context(), LogsRequest{Sandbox: r.Sandbox, Source: r.Source, Follow: r.Follow, Tail: int(r.Tail)}, chunkWriter{stream}))
}
