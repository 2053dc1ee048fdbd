package plugin

import (
	"context"
	"fmt"
	"net"
	"os"

	"github.com/prometheus/procfs"
	"google.golang.org/grpc/credentials"
)

// PeerCred authenticates the process at the other end of a unix socket by
// its kernel credentials (SO_PEERCRED) instead of TLS: the host and its
// plugins are on one machine, their sockets live in a private directory
// (0700) of the host's, and the kernel, not a certificate, says who
// listens or connects. See docs/architecture.md ("Plugin transport") for
// why this is as strong as go-plugin's AutoMTLS and docs/plugin-protocol.md
// for what a plugin sees (no PLUGIN_CLIENT_CERT: plain gRPC on the socket).
//
// The peer must run as the same effective uid as this process (inside a
// plugin box's user namespace the host's uid is the box's root, which is
// the plugin's own uid there too) and, when Pid returns a process id, be
// that process or one of its descendants (the plugin under its box's
// init stage, a script under its interpreter's wrapper). Anything else,
// and any connection that is not a unix socket, is refused.
type PeerCred struct {
	// Pid returns the process the peer must be or descend from; nil or 0
	// checks the uid only (the plugin side, which cannot see the host
	// from inside its pid namespace, and debug plugins); a negative pid
	// (not known) refuses every connection.
	Pid func() int
	// Side names this end in errors ("host", "plugin").
	Side string
}

// PeerCredInfo is the AuthInfo of a connection authenticated by PeerCred.
type PeerCredInfo struct {
	credentials.CommonAuthInfo
	Pid, UID, GID int
}

// AuthType implements credentials.AuthInfo.
func (PeerCredInfo) AuthType() string { return "peercred" }

var _ credentials.TransportCredentials = (*PeerCred)(nil)

// ClientHandshake checks the listening process.
func (p *PeerCred) ClientHandshake(_ context.Context, _ string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	info, err := p.check(conn)
	if err != nil {
		return nil, nil, err
	}
	return conn, info, nil
}

// ServerHandshake checks the connecting process.
func (p *PeerCred) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	info, err := p.check(conn)
	if err != nil {
		return nil, nil, err
	}
	return conn, info, nil
}

// Info implements credentials.TransportCredentials.
func (p *PeerCred) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "peercred"}
}

// Clone implements credentials.TransportCredentials.
func (p *PeerCred) Clone() credentials.TransportCredentials { c := *p; return &c }

// OverrideServerName implements credentials.TransportCredentials (there
// is no name to check).
func (p *PeerCred) OverrideServerName(string) error { return nil }

func (p *PeerCred) check(conn net.Conn) (PeerCredInfo, error) {
	side := p.Side
	if side == "" {
		side = "peer"
	}
	pid, uid, gid, err := peerCred(conn)
	if err != nil {
		return PeerCredInfo{}, fmt.Errorf("%s: cannot authenticate the other end of the plugin socket: %w", side, err)
	}
	if want := os.Geteuid(); uid != want {
		return PeerCredInfo{}, fmt.Errorf("%s: refused a plugin connection from uid %d (pid %d): only uid %d may connect", side, uid, pid, want)
	}
	if p.Pid != nil {
		root := p.Pid()
		if root < 0 {
			return PeerCredInfo{}, fmt.Errorf("%s: refused a plugin connection from pid %d: the launched plugin's process is not known yet", side, pid)
		}
		if root > 0 && !descendsFrom(pid, root) {
			return PeerCredInfo{}, fmt.Errorf("%s: refused a plugin connection from pid %d, which is not the launched plugin (pid %d) or one of its children", side, pid, root)
		}
	}
	// A unix socket on this machine: nothing crosses a wire that could be
	// read or altered (what grpc's own local credentials also declare).
	return PeerCredInfo{CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}, Pid: pid, UID: uid, GID: gid}, nil
}

// descendsFrom reports whether pid is root or a descendant of it, walking
// the parent links in /proc (bounded: a loop in a racing /proc read ends).
func descendsFrom(pid, root int) bool {
	for i := 0; i < 64 && pid > 1; i++ {
		if pid == root {
			return true
		}
		pid = parentPid(pid)
	}
	return pid == root
}

// parentPid is the ppid field of /proc/<pid>/stat, or 0.
func parentPid(pid int) int {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return 0
	}
	st, err := p.Stat()
	if err != nil {
		return 0
	}
	return st.PPID
}
