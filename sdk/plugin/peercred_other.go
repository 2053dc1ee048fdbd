//go:build !linux

package plugin

import (
	"errors"
	"net"
)

// peerCredSupported is false here: the host uses go-plugin's AutoMTLS.
const peerCredSupported = false

func peerCred(net.Conn) (pid, uid, gid int, err error) {
	return 0, 0, 0, errors.New("SO_PEERCRED is only available on Linux")
}
