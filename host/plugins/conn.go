package plugins

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/nemoclave/nemoclave/sdk/plugin"
)

// aliveProbe bounds the Info call that tells a live plugin's own
// Unavailable (its provider is down) from a broken connection.
const aliveProbe = time.Second

// supervisedConn is a grpc.ClientConnInterface over whichever process of a
// Supervised is current, so kind clients built once survive restarts.
type supervisedConn struct{ s *Supervised }

// DefaultCallTimeouts bound one unary call per kind, so a plugin that
// hangs cannot block its caller for ever: generous for kinds that wait on
// models or run tools, tighter for local stores. Spec.CallTimeout (the
// plugin block's timeout) overrides them. A stream (an llm completion)
// may last longer, but not stay silent longer: the same duration bounds
// the wait for each of its messages. WatchTools, silent by design until
// the list changes, ends only with its caller's context.
var DefaultCallTimeouts = map[plugin.Kind]time.Duration{
	plugin.KindLLM:        10 * time.Minute,
	plugin.KindTools:      5 * time.Minute,
	plugin.KindDataProc:   5 * time.Minute,
	plugin.KindEmbeddings: 2 * time.Minute,
	plugin.KindRetrieval:  2 * time.Minute,
	plugin.KindMemory:     2 * time.Minute,
}

// callTimeout is the deadline of one unary call to s.
func (s *Supervised) callTimeout() time.Duration {
	if s.spec.CallTimeout > 0 {
		return s.spec.CallTimeout
	}
	if d, ok := DefaultCallTimeouts[plugin.Kind(s.kind)]; ok {
		return d
	}
	return 5 * time.Minute
}

func (c *supervisedConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	l, err := c.s.current()
	if err != nil {
		return err
	}
	limit := c.s.callTimeout()
	cctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	if err := l.Conn().Invoke(cctx, method, args, reply, opts...); err != nil {
		if ctx.Err() == nil && pastDeadline(cctx) {
			return grpcstatus.Error(codes.DeadlineExceeded, fmt.Sprintf("plugin %s did not answer %s within %s (the per-call deadline for %s plugins; set timeout = \"...\" in its plugin block to change it)", c.s.Name(), method, limit, c.s.kind))
		}
		return c.s.classify(l, err)
	}
	return nil
}

func (c *supervisedConn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	l, err := c.s.current()
	if err != nil {
		return nil, err
	}
	st := &supervisedStream{s: c.s, l: l, ctx: ctx, method: method}
	sctx := ctx
	if !strings.HasSuffix(method, "/WatchTools") {
		var cancel context.CancelFunc
		sctx, cancel = context.WithCancel(ctx)
		st.limit, st.cancel = c.s.callTimeout(), cancel
		st.idle = time.AfterFunc(st.limit, func() { st.expired.Store(true); cancel() })
	}
	cs, err := l.Conn().NewStream(sctx, desc, method, opts...)
	if err != nil {
		st.end()
		return nil, c.s.classify(l, err)
	}
	st.ClientStream = cs
	return st, nil
}

// supervisedStream classifies errors of a stream in flight when its plugin
// dies (an llm plugin crashing mid-completion), and cancels a stream whose
// plugin sends nothing for limit (idle, reset by every message).
type supervisedStream struct {
	grpc.ClientStream
	s      *Supervised
	l      *plugin.Launched
	ctx    context.Context // the caller's
	method string

	limit   time.Duration
	idle    *time.Timer // nil: not bounded
	cancel  context.CancelFunc
	expired atomic.Bool
}

// end releases the idle timer and the stream's context.
func (st *supervisedStream) end() {
	if st.idle != nil {
		st.idle.Stop()
		st.cancel()
	}
}

// idleErr is the error of a stream cancelled for silence, or nil.
func (st *supervisedStream) idleErr() error {
	if !st.expired.Load() || st.ctx.Err() != nil {
		return nil
	}
	return grpcstatus.Error(codes.DeadlineExceeded, fmt.Sprintf("plugin %s sent nothing on %s for %s (the per-call deadline for %s plugins bounds each message of a stream; set timeout = \"...\" in its plugin block to change it)", st.s.Name(), st.method, st.limit, st.s.kind))
}

func (st *supervisedStream) SendMsg(m any) error {
	if err := st.ClientStream.SendMsg(m); err != nil && !errors.Is(err, io.EOF) {
		return st.s.classify(st.l, err)
	} else {
		return err
	}
}

func (st *supervisedStream) RecvMsg(m any) error {
	err := st.ClientStream.RecvMsg(m)
	if err == nil {
		if st.idle != nil && !st.expired.Load() {
			st.idle.Reset(st.limit)
		}
		return nil
	}
	st.end()
	if ierr := st.idleErr(); ierr != nil {
		return ierr
	}
	if errors.Is(err, io.EOF) {
		return err
	}
	return st.s.classify(st.l, err)
}

// classify turns a call's failure on a dead or unreachable process into
// Unavailable "plugin X crashed; restarting" and retires the process, so the
// failed client is never used again. An Unavailable returned by a live
// plugin (its provider is down) passes through untouched: when the process
// has not exited, a cheap Info call on the same connection decides.
func (s *Supervised) classify(l *plugin.Launched, err error) error {
	if grpcstatus.Code(err) != codes.Unavailable {
		return err
	}
	if !l.Exited() {
		ctx, cancel := context.WithTimeout(context.Background(), aliveProbe)
		_, ierr := l.Info(ctx)
		cancel()
		if ierr == nil {
			return err
		}
	}
	s.crashed(l, err)
	return grpcstatus.Error(codes.Unavailable, fmt.Sprintf("plugin %s crashed; restarting (%s)", s.Name(), grpcstatus.Convert(err).Message()))
}

// pastDeadline reports whether ctx's deadline has passed, even when its own
// timer has not fired yet: gRPC gives the plugin the same deadline, and
// under load the plugin's side can end the call (RST_STREAM CANCEL) before
// this side's timer has run.
func pastDeadline(ctx context.Context) bool {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}
