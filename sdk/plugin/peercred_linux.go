package plugin

import (
	"errors"
	"net"
	"syscall"
)

// peerCredSupported is true where SO_PEERCRED authenticates plugin
// sockets; elsewhere the host uses go-plugin's AutoMTLS.
const peerCredSupported = true

// peerCred reads the credentials the kernel recorded for the other end of
// a connected unix socket (at its connect or listen).
func peerCred(conn net.Conn) (pid, uid, gid int, err error) {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return 0, 0, 0, errors.New("not a unix socket connection")
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return 0, 0, 0, err
	}
	var cred *syscall.Ucred
	var serr error
	if err := raw.Control(func(fd uintptr) {
		cred, serr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return 0, 0, 0, err
	}
	if serr != nil {
		return 0, 0, 0, serr
	}
	return int(cred.Pid), int(cred.Uid), int(cred.Gid), nil
}
