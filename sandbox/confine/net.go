package confine

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// BringUpLoopback sets IFF_UP on lo in the calling thread's network
// namespace. A fresh namespace starts with lo down; a box that serves or
// reaches a listener on 127.0.0.1 inside it needs it up. It needs
// CAP_NET_ADMIN in the namespace, which an init stage holds until it
// drops every capability.
func BringUpLoopback() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket for lo: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("read lo flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP | unix.IFF_RUNNING)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring up lo: %w", err)
	}
	return nil
}
