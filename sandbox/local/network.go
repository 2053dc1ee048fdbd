package local

import (
	"fmt"
	"net"
	"os"
)

// The sandbox's network namespace starts with a single interface, lo, and
// it is down. The init stage brings it up and creates the gateway listeners
// inside the namespace, so the only addresses the agent can reach are those
// listeners; there is no route anywhere else, and an agent that ignores the
// proxy variables gets ENETUNREACH rather than a bypass.

// openListeners creates one TCP listener on 127.0.0.1 per name, returning
// duplicated descriptors to hand to the supervisor and the ports chosen.
func openListeners(names []string) ([]*os.File, []int, error) {
	var files []*os.File
	var ports []int
	for _, n := range names {
		l, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			closeAll(files)
			return nil, nil, fmt.Errorf("listener %s: %w", n, err)
		}
		f, err := l.File()
		_ = l.Close()
		if err != nil {
			closeAll(files)
			return nil, nil, fmt.Errorf("listener %s fd: %w", n, err)
		}
		files = append(files, f)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return files, ports, nil
}
