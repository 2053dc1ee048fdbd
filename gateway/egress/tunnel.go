package egress

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// tunnel is one open CONNECT tunnel (opaque, TLS pass-through or
// inspected), tracked so a policy reload or sandbox removal can close it.
type tunnel struct {
	target  Target
	inspect bool
	opaque  bool
	once    bool // approved "once" by an operator: not in any revision

	mu     sync.Mutex
	conns  []net.Conn
	reason string
	done   bool
}

func (t *tunnel) attach(c net.Conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		c.Close()
		return
	}
	t.conns = append(t.conns, c)
}

// close ends the tunnel; the first reason is kept for the audit event.
func (t *tunnel) close(reason string) {
	t.mu.Lock()
	if t.done {
		t.mu.Unlock()
		return
	}
	t.done, t.reason = true, reason
	conns := t.conns
	t.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

func (t *tunnel) closedReason() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.reason
}

// stillAllowed re-judges an open tunnel against the sandbox's current
// revision: "" when it may stay open, else why it must close.
func (t *tunnel) stillAllowed(sb *sandbox) string {
	if t.once {
		return ""
	}
	d := sb.decide(t.target)
	switch {
	case !d.allow:
		return "closed by policy revision " + itoa(d.revision) + ": " + d.reason
	case d.endpoint.Inspect != t.inspect:
		return "closed by policy revision " + itoa(d.revision) + ": inspection setting changed for " + t.target.String()
	case t.opaque && !d.endpoint.AllowOpaque:
		return "closed by policy revision " + itoa(d.revision) + ": opaque tunnels no longer allowed to " + t.target.String()
	}
	return ""
}

// relay copies both ways until both sides finish, a cap is hit or the
// lifetime passes. Between two TCP connections io.Copy uses splice(2), so
// bulk data never enters user space; the LimitedReader keeps that path and
// still caps each direction.
func relay(client, upstream net.Conn, maxBytes int64, lifetime time.Duration) (up, down int64) {
	timer := time.AfterFunc(lifetime, func() {
		client.Close()
		upstream.Close()
	})
	defer timer.Stop()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		down = pipe(client, upstream, maxBytes)
	}()
	up = pipe(upstream, client, maxBytes)
	wg.Wait()
	return up, down
}

// pipe copies src to dst, then half-closes dst so the peer sees EOF while
// the other direction drains. Hitting the cap closes both.
func pipe(dst, src net.Conn, maxBytes int64) int64 {
	lr := &io.LimitedReader{R: src, N: maxBytes}
	n, err := io.Copy(dst, lr)
	if lr.N <= 0 || (err != nil && !errors.Is(err, net.ErrClosed)) {
		dst.Close()
		src.Close()
		return n
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		if cw.CloseWrite() != nil {
			dst.Close()
		}
	} else {
		dst.Close()
	}
	return n
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	neg := n < 0
	if neg {
		n = -n
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}
