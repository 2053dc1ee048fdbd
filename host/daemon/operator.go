package daemon

import (
	"context"
	"net"
	"os/user"
	"strconv"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/peer"
)

// The daemon's socket is 0600 in a 0700 directory, so every client is the
// daemon's user or root; which one, and which process, is still worth a
// record for decisions an operator makes (approval answers, R9). The
// kernel says who is on the other end (SO_PEERCRED), so the identity
// cannot be forged by the client.

// credListener wraps the daemon's unix listener: each accepted connection
// reports its peer's credentials as its remote address, which gRPC hands
// to every call on it (peer.FromContext).
type credListener struct{ net.Listener }

func (l credListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return c, nil
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return c, nil
	}
	var cred *unix.Ucred
	_ = raw.Control(func(fd uintptr) {
		cred, _ = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	if cred == nil {
		return c, nil
	}
	return credConn{UnixConn: uc, addr: peerAddr{uid: cred.Uid, pid: cred.Pid}}, nil
}

type credConn struct {
	*net.UnixConn
	addr peerAddr
}

func (c credConn) RemoteAddr() net.Addr { return c.addr }

type peerAddr struct {
	uid uint32
	pid int32
}

func (peerAddr) Network() string { return "unix" }

func (a peerAddr) String() string {
	name := "uid " + strconv.FormatUint(uint64(a.uid), 10)
	if u, err := user.LookupId(strconv.FormatUint(uint64(a.uid), 10)); err == nil {
		name = u.Username + " (" + name + ")"
	}
	return name + ", pid " + strconv.Itoa(int(a.pid))
}

// Operator names the local user (and process) that made the daemon call
// in ctx, from the kernel's peer credentials; "" when unknown (an
// in-process call).
func Operator(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return ""
	}
	if a, ok := p.Addr.(peerAddr); ok {
		return a.String()
	}
	return ""
}
