package daemon

import (
	"context"
	"net"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/credentials"
)

// localAuth is the unix socket peer's identity, from SO_PEERCRED.
type localAuth struct {
	credentials.CommonAuthInfo
	uid uint32
}

func (localAuth) AuthType() string { return "local" }

// peerCreds reads the uid of the process on the other end of the unix
// socket, so audit records name the local caller (`local:<uid>`). It
// changes nothing on the wire: the CLI dials with insecure credentials.
type peerCreds struct{}

func (peerCreds) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	info := localAuth{CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}, uid: ^uint32(0)}
	if uc, ok := c.(*net.UnixConn); ok {
		if raw, err := uc.SyscallConn(); err == nil {
			_ = raw.Control(func(fd uintptr) {
				if cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
					info.uid = cred.Uid
				}
			})
		}
	}
	return c, info, nil
}

func (peerCreds) ClientHandshake(_ context.Context, _ string, c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return c, localAuth{}, nil
}

func (peerCreds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "local"}
}

func (p peerCreds) Clone() credentials.TransportCredentials { return p }

func (peerCreds) OverrideServerName(string) error { return nil }
