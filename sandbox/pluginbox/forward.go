package pluginbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/nemoclave/nemoclave/sandbox/confine"
)

// checkForward refuses an address the init stage could not give the
// plugin: a port out of range, a host that is neither an IP literal nor a
// DNS name, a scoped (link-local with a zone) or multicast IPv6 address.
func checkForward(f Forward) error {
	if f.Port < 1 || f.Port > 65535 {
		return fmt.Errorf("forward %s: port out of range", f)
	}
	if a, err := netip.ParseAddr(f.Host); err == nil {
		if a.Zone() != "" || a.IsLinkLocalUnicast() || a.IsMulticast() {
			return fmt.Errorf("forward %s: a link-local or multicast address cannot be forwarded into a plugin box; name the server by its host name or a global address", f)
		}
		if a.IsUnspecified() {
			return fmt.Errorf("forward %s: the unspecified address names no server", f)
		}
		return nil
	}
	if f.Host == "" || len(f.Host) > 253 || strings.Trim(f.Host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.") != "" {
		return fmt.Errorf("forward %s: %q is not a host name", f, f.Host)
	}
	return nil
}

// forwardListeners runs in the init stage of a NetworkForward box: it
// brings up lo, listens on the address the plugin will dial for each
// forward (an IP literal as itself, added to lo when it is not a loopback
// address; a name on a loopback address of its own, written into the
// box's /etc/hosts), and sends the listeners to the host in Forwards'
// order. Landlock then allows TCP connect to the forwarded ports only.
func forwardListeners(c *config) error {
	if err := confine.BringUpLoopback(); err != nil {
		return err
	}
	hosts := []string{"127.0.0.1 localhost"}
	names := map[string]netip.Addr{"localhost": netip.AddrFrom4([4]byte{127, 0, 0, 1})}
	next := byte(1) // names get 127.77.0.1, 127.77.0.2, …
	var fds []int
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	ports := map[int]bool{}
	for i, f := range c.Forwards {
		a, err := netip.ParseAddr(f.Host)
		switch {
		case err == nil && a.Is4In6():
			a = a.Unmap()
			fallthrough
		case err == nil:
			var err error
			switch {
			case a.IsLoopback():
			case a.Is4():
				err = addLoopbackAlias(i+1, a)
			default:
				err = addLoopbackAlias6(a)
			}
			if err != nil {
				return fmt.Errorf("forward %s: %w", f, err)
			}
		default:
			var ok bool
			if a, ok = names[strings.ToLower(f.Host)]; !ok {
				a = netip.AddrFrom4([4]byte{127, 77, 0, next}) // a range no configured address is likely to use
				next++
				names[strings.ToLower(f.Host)] = a
				hosts = append(hosts, a.String()+" "+f.Host)
			}
		}
		fd, err := listenOn(a, f.Port)
		if err != nil {
			return fmt.Errorf("forward %s: listen on %s inside the box: %w", f, a, err)
		}
		fds = append(fds, fd)
		ports[f.Port] = true
	}
	if err := unix.Sendmsg(proxyFD, []byte{byte(len(fds))}, unix.UnixRights(fds...), nil, 0); err != nil {
		return fmt.Errorf("send the listeners to the host: %w", err)
	}
	_ = unix.Close(proxyFD)
	c.Ports = c.Ports[:0]
	for p := range ports {
		c.Ports = append(c.Ports, p)
	}
	c.hosts = strings.Join(hosts, "\n") + "\n"
	return nil
}

func listenOn(a netip.Addr, port int) (int, error) {
	family := unix.AF_INET6
	var sa unix.Sockaddr = &unix.SockaddrInet6{Addr: a.As16(), Port: port}
	if a.Is4() {
		family = unix.AF_INET
		sa = &unix.SockaddrInet4{Addr: a.As4(), Port: port}
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	err = unix.Bind(fd, sa)
	// An IPv6 address just added to lo is tentative until the kernel's
	// address worker marks it ready (no duplicate detection on lo, but
	// asynchronous): a moment.
	for i := 0; err == unix.EADDRNOTAVAIL && a.Is6() && i < 500; i++ {
		time.Sleep(10 * time.Millisecond)
		err = unix.Bind(fd, sa)
	}
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	if err := unix.Listen(fd, 128); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// addLoopbackAlias gives lo the IPv4 address a (/32) as label lo:n, so
// the plugin's connect to its database's literal address lands on the
// box's listener.
func addLoopbackAlias(n int, a netip.Addr) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(fmt.Sprintf("lo:%d", n))
	if err != nil {
		return err
	}
	ip := a.As4()
	if err := ifr.SetInet4Addr(ip[:]); err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFADDR, ifr); err != nil {
		return fmt.Errorf("add %s to lo: %w", a, err)
	}
	if err := ifr.SetInet4Addr([]byte{255, 255, 255, 255}); err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFNETMASK, ifr); err != nil {
		return fmt.Errorf("set the netmask of %s: %w", a, err)
	}
	return nil
}

// addLoopbackAlias6 gives lo the IPv6 address a (/128): the plugin's
// connect to its database's IPv6 literal lands on the box's listener. An
// address on lo needs no duplicate address detection, so it is usable at
// once.
func addLoopbackAlias6(a netip.Addr) error {
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("add %s to lo: IPv6 is not available in the box (%w); name the server by its host name or IPv4 address", a, err)
	}
	defer unix.Close(fd)
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		return err
	}
	// struct in6_ifreq (linux/ipv6.h): address, prefix length, ifindex.
	var req struct {
		addr      [16]byte
		prefixLen uint32
		ifindex   int32
	}
	req.addr, req.prefixLen, req.ifindex = a.As16(), 128, int32(lo.Index)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCSIFADDR, uintptr(unsafe.Pointer(&req))); errno != 0 {
		return fmt.Errorf("add %s to lo: %w (is IPv6 disabled on this host? net.ipv6.conf.default.disable_ipv6)", a, errno)
	}
	return nil
}

// mountHosts gives the box the /etc/hosts forwardListeners wrote: the
// names of the forwarded servers on their box addresses, and localhost.
func mountHosts(c *config, in func(string) string) error {
	if c.hosts == "" {
		return nil
	}
	src := in("/.hosts")
	if err := os.WriteFile(src, []byte(c.hosts), 0o444); err != nil {
		return err
	}
	dst := in("/etc/hosts")
	if _, err := os.Stat(dst); err != nil {
		return fmt.Errorf("the box's /etc/hosts (for the forwarded servers' names): %w", err)
	}
	if err := confine.BindMount(src, dst, confine.ROAttrs); err != nil {
		return fmt.Errorf("bind the box's /etc/hosts: %w", err)
	}
	return nil
}

// receiveListeners reads the n listeners the init stage sends over the
// socket pair (one message).
func receiveListeners(uc *net.UnixConn, n int) ([]net.Listener, error) {
	_ = uc.SetReadDeadline(time.Now().Add(time.Minute))
	oob := make([]byte, unix.CmsgSpace(4*n))
	_, oobn, _, _, err := uc.ReadMsgUnix(make([]byte, 1), oob)
	if err != nil {
		return nil, fmt.Errorf("receive the box's listeners (its init stage failed; see its log): %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("no listeners from the box (%v)", err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil {
		return nil, fmt.Errorf("no listeners from the box (%v)", err)
	}
	var lns []net.Listener
	var errs []error
	for _, fd := range fds {
		f := os.NewFile(uintptr(fd), "plugin-listener")
		ln, err := net.FileListener(f)
		f.Close()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		lns = append(lns, ln)
	}
	if len(errs) == 0 && len(lns) != n {
		errs = append(errs, fmt.Errorf("the box sent %d listeners, want %d", len(lns), n))
	}
	if len(errs) > 0 {
		for _, ln := range lns {
			ln.Close()
		}
		return nil, errors.Join(errs...)
	}
	return lns, nil
}

// serveForwards connects every connection accepted on lns[i] to
// p.Forwards[i] until ctx ends, then closes the listeners and every
// connection still open.
func serveForwards(ctx context.Context, p Profile, lns []net.Listener, logf func(msg string, args ...any)) {
	dial := p.Dial
	if dial == nil {
		d := &net.Dialer{Timeout: 10 * time.Second}
		dial = d.DialContext
	}
	var wg sync.WaitGroup
	for i, ln := range lns {
		f := p.Forwards[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			stop := context.AfterFunc(ctx, func() { ln.Close() })
			defer stop()
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go forward(ctx, c, f, dial, logf)
			}
		}()
	}
	<-ctx.Done()
	wg.Wait()
}

func forward(ctx context.Context, c net.Conn, f Forward, dial func(context.Context, string, string) (net.Conn, error), logf func(string, ...any)) {
	defer c.Close()
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	up, err := dial(dctx, "tcp", f.String())
	cancel()
	if err != nil {
		logf("plugin forward: cannot reach its server", "address", f.String(), "error", err)
		return
	}
	defer up.Close()
	stop := context.AfterFunc(ctx, func() { c.Close(); up.Close() })
	defer stop()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	<-done
}
