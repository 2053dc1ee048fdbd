package pluginbox_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/nemoclave/nemoclave/sandbox/pluginbox"
)

// TestEscape_PL2_DatabaseOnlyItsServer is PL2's network half for database
// plugins: a NetworkForward box reaches its configured server (by name,
// and by a non-loopback IPv4 literal) and nothing else, not even another
// port of the same host or the server's real address.
func TestEscape_PL2_DatabaseOnlyItsServer(t *testing.T) {
	// The "database": a banner per connection, on the host's loopback.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprint(c, "PGBANNER")
			c.Close()
		}
	}()
	real := ln.Addr().String()
	var dialed []string
	dialedCh := make(chan string, 16)
	e := setup(t, &pluginbox.Profile{
		Network:  pluginbox.NetworkForward,
		Forwards: []pluginbox.Forward{{Host: "db.internal.test", Port: 5432}, {Host: "192.0.2.10", Port: 6543}},
		// The host side dials whatever the forward names; here both
		// names lead to the stand-in, so the test sends nothing off-host.
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dialedCh <- addr
			var d net.Dialer
			return d.DialContext(ctx, network, real)
		},
	})
	for _, target := range []string{"db.internal.test:5432", "192.0.2.10:6543"} {
		if got := e.attack("read_tcp", target, 0); got != "ok: read PGBANNER" {
			t.Errorf("the plugin cannot reach its configured server %s: %s", target, got)
		}
		dialed = append(dialed, <-dialedCh)
	}
	if strings.Join(dialed, ",") != "db.internal.test:5432,192.0.2.10:6543" {
		t.Errorf("the host dialed %v, want exactly the configured addresses", dialed)
	}
	// Nothing else: the server's real address, another port of a
	// forwarded address, another host, the internet.
	e.denied("dial_tcp", real, refused, eacces, unreach)
	e.denied("dial_tcp", "db.internal.test:22", refused, eacces)
	e.denied("dial_tcp", "192.0.2.10:5432", refused, eacces)
	e.denied("dial_tcp", "other.internal.test:5432", "no such host", "server misbehaving", "lookup")
	e.denied("dial_tcp", "1.1.1.1:5432", unreach, eacces)
	select {
	case a := <-dialedCh:
		t.Errorf("the host dialed %s for a connection the box should not have made", a)
	default:
	}
}

// TestEscape_PL2_DatabaseByIPv6Literal: a database named by an IPv6
// literal is reached the same way as an IPv4 one: the box's lo takes the
// address (::1 it has), the plugin dials it, the host dials the configured
// address; another port or address stays closed.
func TestEscape_PL2_DatabaseByIPv6Literal(t *testing.T) {
	if b, err := os.ReadFile("/proc/sys/net/ipv6/conf/default/disable_ipv6"); err != nil || strings.TrimSpace(string(b)) != "0" {
		t.Skipf("IPv6 is disabled for new network namespaces here (net.ipv6.conf.default.disable_ipv6: %q %v)", b, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprint(c, "PGBANNER6")
			c.Close()
		}
	}()
	real := ln.Addr().String()
	dialedCh := make(chan string, 16)
	e := setup(t, &pluginbox.Profile{
		Network:  pluginbox.NetworkForward,
		Forwards: []pluginbox.Forward{{Host: "2001:db8::10", Port: 6544}, {Host: "::1", Port: 6545}},
		// Only the stand-in is dialed: the test sends nothing off-host.
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dialedCh <- addr
			var d net.Dialer
			return d.DialContext(ctx, network, real)
		},
	})
	if got := e.attack("read_tcp", "[2001:db8::10]:6544", 0); got != "ok: read PGBANNER6" {
		t.Fatalf("the plugin cannot reach its server at an IPv6 literal: %s", got)
	}
	if a := <-dialedCh; a != "[2001:db8::10]:6544" {
		t.Errorf("the host dialed %s, want [2001:db8::10]:6544", a)
	}
	if got := e.attack("read_tcp", "[::1]:6545", 0); got != "ok: read PGBANNER6" {
		t.Fatalf("the plugin cannot reach its server at [::1]: %s", got)
	}
	if a := <-dialedCh; a != "[::1]:6545" {
		t.Errorf("the host dialed %s, want [::1]:6545", a)
	}
	e.denied("dial_tcp", "[2001:db8::10]:5432", refused, eacces)
	e.denied("dial_tcp", "[2001:db8::11]:6544", unreach, refused, eacces)
	select {
	case a := <-dialedCh:
		t.Errorf("the host dialed %s for a connection the box should not have made", a)
	default:
	}
}
