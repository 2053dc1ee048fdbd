package daemon

import (
	"context"
	"errors"
	"io"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/nemoclave/nemoclave/host/api/daemonpb"
)

// Attach is the bidirectional stream behind `nemoclave run` (typing into
// the agent of an attached run) and `nemoclave <sandbox> connect`: the
// first message names the sandbox, later ones carry input, window sizes,
// the end of input or a detach.

type attachEvents struct {
	mu     sync.Mutex
	stream pb.Daemon_AttachServer
}

func (e *attachEvents) send(out *pb.AttachOutput) {
	e.mu.Lock()
	defer e.mu.Unlock()
	_ = e.stream.Send(out) // a gone client cancels the context
}

func (e *attachEvents) Ready(tty bool) {
	e.send(&pb.AttachOutput{Output: &pb.AttachOutput_Ready{Ready: &pb.Console{Tty: tty}}})
}

func (e *attachEvents) Output(b []byte) {
	e.send(&pb.AttachOutput{Output: &pb.AttachOutput_Data{Data: append([]byte(nil), b...)}})
}

func (e *attachEvents) Detached() {
	e.send(&pb.AttachOutput{Output: &pb.AttachOutput_Detached{Detached: true}})
}

func (e *attachEvents) Exit(code int, reason string) {
	e.send(&pb.AttachOutput{Output: &pb.AttachOutput_Exit{Exit: &pb.Exit{Code: int32(code), Reason: reason}}})
}

func (s *Server) Attach(stream pb.Daemon_AttachServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	start := first.GetStart()
	if start == nil {
		return status.Error(codes.InvalidArgument, "attach: the first message must be a start request")
	}
	in := make(chan AttachInput, 16)
	go func() {
		defer close(in)
		for {
			m, err := stream.Recv()
			if err != nil {
				return
			}
			var ai AttachInput
			switch v := m.Input.(type) {
			case *pb.AttachInput_Stdin:
				ai.Stdin = v.Stdin
			case *pb.AttachInput_Resize:
				ai.Resize = &[2]uint16{uint16(v.Resize.Rows), uint16(v.Resize.Cols)}
			case *pb.AttachInput_CloseStdin:
				ai.CloseStdin = true
			case *pb.AttachInput_Detach:
				ai.Detach = true
			default:
				continue
			}
			select {
			case in <- ai:
			case <-stream.Context().Done():
				return
			}
		}
	}()
	return rpcError(s.backend.Attach(stream.Context(), AttachRequest{
		Sandbox: start.Sandbox, Rows: uint16(start.Rows), Cols: uint16(start.Cols), Output: start.Output, Tail: int(start.Tail),
	}, in, &attachEvents{stream: stream}))
}

// AttachSession is a client's side of an attach.
type AttachSession struct {
	st     pb.Daemon_AttachClient
	cancel context.CancelFunc
	mu     sync.Mutex
	// TTY says whether the agent is on a terminal.
	TTY bool
}

// Attach opens the agent's console in a sandbox and waits until it is
// ready. Output (when req.Output) and the end go to ev; input goes
// through the session's methods. Cancel ctx or Close to leave.
func (c *Client) Attach(ctx context.Context, req AttachRequest, ev AttachEvents) (*AttachSession, <-chan error, error) {
	ctx, cancel := context.WithCancel(ctx)
	st, err := c.rpc.Attach(ctx)
	if err != nil {
		cancel()
		return nil, nil, Err(err)
	}
	if err := st.Send(&pb.AttachInput{Input: &pb.AttachInput_Start{Start: &pb.AttachStart{
		Sandbox: req.Sandbox, Rows: uint32(req.Rows), Cols: uint32(req.Cols), Output: req.Output, Tail: int32(req.Tail),
	}}}); err != nil {
		cancel()
		return nil, nil, Err(err)
	}
	first, err := st.Recv()
	if err != nil {
		cancel()
		return nil, nil, Err(err)
	}
	ready := first.GetReady()
	if ready == nil {
		cancel()
		return nil, nil, errors.New("attach: the daemon did not open the console")
	}
	s := &AttachSession{st: st, cancel: cancel, TTY: ready.Tty}
	done := make(chan error, 1)
	go func() {
		for {
			out, err := st.Recv()
			if err != nil {
				if errors.Is(err, io.EOF) || ctx.Err() != nil {
					done <- nil
				} else {
					done <- Err(err)
				}
				return
			}
			switch v := out.Output.(type) {
			case *pb.AttachOutput_Data:
				ev.Output(v.Data)
			case *pb.AttachOutput_Detached:
				ev.Detached()
			case *pb.AttachOutput_Exit:
				ev.Exit(int(v.Exit.Code), v.Exit.Reason)
			}
		}
	}()
	return s, done, nil
}

func (s *AttachSession) send(in *pb.AttachInput) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.Send(in)
}

// Write types into the agent.
func (s *AttachSession) Write(b []byte) (int, error) {
	if err := s.send(&pb.AttachInput{Input: &pb.AttachInput_Stdin{Stdin: append([]byte(nil), b...)}}); err != nil {
		return 0, err
	}
	return len(b), nil
}

// Resize sets the agent's terminal size.
func (s *AttachSession) Resize(rows, cols uint16) error {
	return s.send(&pb.AttachInput{Input: &pb.AttachInput_Resize{Resize: &pb.Resize{Rows: uint32(rows), Cols: uint32(cols)}}})
}

// CloseStdin ends the agent's input.
func (s *AttachSession) CloseStdin() error {
	return s.send(&pb.AttachInput{Input: &pb.AttachInput_CloseStdin{CloseStdin: true}})
}

// Detach asks the daemon to leave the agent running; the acknowledgement
// arrives as AttachEvents.Detached.
func (s *AttachSession) Detach() error {
	return s.send(&pb.AttachInput{Input: &pb.AttachInput_Detach{Detach: true}})
}

// Close ends the session; the agent keeps running.
func (s *AttachSession) Close() {
	s.mu.Lock()
	_ = s.st.CloseSend()
	s.mu.Unlock()
	s.cancel()
}
