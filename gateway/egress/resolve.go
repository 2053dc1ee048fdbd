package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Resolver maps a host name to addresses. *net.Resolver satisfies it. The
// gateway calls it only after the policy has allowed the name, so a name
// no rule allows never reaches DNS (row N3).
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// ErrForbiddenAddress is wrapped when every address of an allowed name is in
// a range the sandbox may not reach.
var ErrForbiddenAddress = errors.New("destination address is not reachable from a sandbox")

var (
	prefixMetadata = []netip.Prefix{
		netip.MustParsePrefix("169.254.169.254/32"), // AWS, GCP, Azure, OpenStack
		netip.MustParsePrefix("169.254.170.2/32"),   // ECS task metadata
		netip.MustParsePrefix("100.100.100.200/32"), // Alibaba
		netip.MustParsePrefix("192.0.0.192/32"),     // Oracle
		netip.MustParsePrefix("fd00:ec2::254/128"),  // AWS IPv6
	}
	prefixPrivate = []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("172.16.0.0/12"),
		netip.MustParsePrefix("192.168.0.0/16"),
		netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT
		netip.MustParsePrefix("fc00::/7"),      // unique local
	}
	prefixReserved = []netip.Prefix{
		netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
		netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
		netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
		netip.MustParsePrefix("240.0.0.0/4"),     // reserved, broadcast
		netip.MustParsePrefix("100::/64"),        // discard-only
		netip.MustParsePrefix("2001:db8::/32"),   // documentation
		netip.MustParsePrefix("fec0::/10"),       // site-local (deprecated)
		netip.MustParsePrefix("::/96"),           // IPv4-compatible (deprecated)
		netip.MustParsePrefix("2001:10::/28"),    // ORCHID
		netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
		netip.MustParsePrefix("2001:0:0:0::/32"), // Teredo: the embedded address is obfuscated, refuse outright
	}
	prefixNAT64 = netip.MustParsePrefix("64:ff9b::/96")
	prefix6to4  = netip.MustParsePrefix("2002::/16")
)

// addrClass names why an address is refused; "" means reachable.
func addrClass(a netip.Addr, allowPrivate, allowLoopback bool) string {
	a = a.Unmap()
	if !a.IsValid() {
		return "invalid address"
	}
	if a.Zone() != "" {
		return "scoped address"
	}
	// Embedded IPv4 forms reach the IPv4 address on gateways that translate
	// them, so they are judged by what they embed as well as by themselves.
	if a.Is6() {
		if prefixNAT64.Contains(a) || prefix6to4.Contains(a) {
			b := a.As16()
			var v4 netip.Addr
			if prefixNAT64.Contains(a) {
				v4 = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
			} else {
				v4 = netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]})
			}
			if c := addrClass(v4, allowPrivate, allowLoopback); c != "" {
				return c + " (embedded in " + a.String() + ")"
			}
		}
	}
	switch {
	case a.IsUnspecified():
		return "unspecified address"
	case a.IsLoopback():
		if allowLoopback {
			return ""
		}
		return "loopback address"
	case a.IsMulticast():
		return "multicast address"
	}
	for _, p := range prefixMetadata {
		if p.Contains(a) {
			return "cloud metadata address"
		}
	}
	if a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() {
		return "link-local address"
	}
	for _, p := range prefixReserved {
		if p.Contains(a) {
			return "reserved address range " + p.String()
		}
	}
	if a == netip.IPv4Unspecified() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return "broadcast address"
	}
	for _, p := range prefixPrivate {
		if p.Contains(a) {
			if allowPrivate {
				return ""
			}
			return "private address range " + p.String()
		}
	}
	return ""
}

// hostAddrs caches the host's own interface addresses: a sandbox must not
// reach the host it runs on through a public address of that host.
type hostAddrs struct {
	mu      sync.Mutex
	fetched time.Time
	set     map[netip.Addr]bool
}

func (h *hostAddrs) get() []netip.Addr {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.set == nil || time.Since(h.fetched) > 30*time.Second {
		h.set = map[netip.Addr]bool{}
		if addrs, err := net.InterfaceAddrs(); err == nil {
			for _, a := range addrs {
				if p, err := netip.ParsePrefix(a.String()); err == nil {
					h.set[p.Addr().Unmap()] = true
				}
			}
		}
		h.fetched = time.Now()
	}
	out := make([]netip.Addr, 0, len(h.set))
	for a := range h.set {
		out = append(out, a)
	}
	return out
}

// vetted is the outcome of resolving and filtering one target.
type vetted struct {
	addrs   []netip.Addr // reachable addresses, in resolver order
	dropped []string     // "addr: reason" for each refused address
}

// resolveAndVet resolves t (unless it is a literal) and keeps only addresses
// the endpoint may reach. It fails when none is left.
func (p *Proxy) resolveAndVet(ctx context.Context, t Target, allowPrivate bool) (vetted, error) {
	var v vetted
	addrs := []netip.Addr{t.IP}
	if !t.IsLiteral() {
		ctx, cancel := context.WithTimeout(ctx, p.cfg.DialTimeout)
		defer cancel()
		start := time.Now()
		var err error
		addrs, err = p.cfg.Resolver.LookupNetIP(ctx, "ip", t.Host)
		p.metrics.observeDNS(time.Since(start))
		if err != nil {
			return v, fmt.Errorf("resolving %s: %w", t.Host, err)
		}
	}
	own := map[netip.Addr]bool{}
	for _, a := range p.cfg.HostAddrs() {
		own[a.Unmap()] = true
	}
	for _, a := range addrs {
		a = a.Unmap()
		reason := addrClass(a, allowPrivate, p.cfg.UnsafeAllowLoopback)
		if reason == "" && own[a] {
			reason = "address of the gateway host"
		}
		if reason != "" {
			v.dropped = append(v.dropped, a.String()+": "+reason)
			continue
		}
		v.addrs = append(v.addrs, a)
	}
	if len(v.addrs) == 0 {
		return v, fmt.Errorf("%w: %s resolved to %v; ask the operator for allow_private on the endpoint if this is an in-house service (loopback, link-local and metadata addresses are never reachable)", ErrForbiddenAddress, t.Host, v.dropped)
	}
	return v, nil
}
