package egress

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/nemoclave/nemoclave/policy"
)

// Target is a canonical destination: what the policy is matched against and
// what the audit log records. Two spellings of one destination ("API.GitHub.com.:443",
// "api.github.com:443") give equal Targets.
type Target struct {
	// Host is the canonical name (IDNA A-labels, lower case, no trailing
	// dot) or, for an IP literal, netip's canonical text of the unmapped
	// address.
	Host string
	// IP is set when the request named an IP literal.
	IP netip.Addr
	// Port is 1-65535.
	Port int
}

// String is host:port with IPv6 literals bracketed.
func (t Target) String() string {
	return net.JoinHostPort(t.Host, strconv.Itoa(t.Port))
}

// IsLiteral reports whether the request named an IP address.
func (t Target) IsLiteral() bool { return t.IP.IsValid() }

// ErrBadAuthority is wrapped by every canonicalisation failure.
var ErrBadAuthority = errors.New("bad request target")

// ParseAuthority canonicalises a CONNECT authority ("host:port"). The port is
// mandatory, userinfo, paths, zones and percent-encoding are refused, and
// nothing is resolved.
func ParseAuthority(authority string) (Target, error) {
	if authority == "" || len(authority) > 1024 {
		return Target{}, fmt.Errorf("%w: empty or over-long authority; use CONNECT host:port", ErrBadAuthority)
	}
	for i := 0; i < len(authority); i++ {
		c := authority[i]
		if c <= ' ' || c >= 0x7f && c < 0x80 || strings.IndexByte("@/\\%?#", c) >= 0 {
			return Target{}, fmt.Errorf("%w: %q contains %q; send a bare host:port without userinfo, path or encoding", ErrBadAuthority, authority, c)
		}
	}
	host, portStr, err := net.SplitHostPort(authority)
	if err != nil {
		return Target{}, fmt.Errorf("%w: %q: %v; use CONNECT host:port", ErrBadAuthority, authority, err)
	}
	port, err := parsePort(portStr)
	if err != nil {
		return Target{}, err
	}
	bracketed := strings.HasPrefix(authority, "[")
	return canonicalHost(host, bracketed, port)
}

// ParseURLTarget canonicalises the target of an absolute-form request
// ("http://host[:port]/..."); the default port is the scheme's.
func ParseURLTarget(u *url.URL) (Target, error) {
	if u == nil || u.Host == "" {
		return Target{}, fmt.Errorf("%w: the request line must carry an absolute URL (http://host/path); configure the client to use the proxy", ErrBadAuthority)
	}
	if u.User != nil {
		return Target{}, fmt.Errorf("%w: userinfo in the URL is refused; send credentials in a header", ErrBadAuthority)
	}
	def := 0
	switch u.Scheme {
	case "http":
		def = 80
	default:
		return Target{}, fmt.Errorf("%w: scheme %q; only http:// is proxied in absolute form, use CONNECT for https", ErrBadAuthority, u.Scheme)
	}
	return ParseHostHeader(u.Host, def)
}

// ParseHostHeader canonicalises a Host header or URL authority whose port is
// optional (defPort when absent).
func ParseHostHeader(hostport string, defPort int) (Target, error) {
	hasPort := false
	switch {
	case strings.HasPrefix(hostport, "["):
		hasPort = !strings.HasSuffix(hostport, "]")
	case strings.Count(hostport, ":") > 1:
		return Target{}, fmt.Errorf("%w: IPv6 literal %q must be bracketed", ErrBadAuthority, hostport)
	default:
		hasPort = strings.Contains(hostport, ":")
	}
	if !hasPort {
		hostport += ":" + strconv.Itoa(defPort)
	}
	return ParseAuthority(hostport)
}

func parsePort(s string) (int, error) {
	if s == "" || len(s) > 5 || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("%w: port %q must be a decimal number 1-65535 without leading zeros", ErrBadAuthority, s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%w: port %q must be a decimal number 1-65535", ErrBadAuthority, s)
		}
	}
	n, _ := strconv.Atoi(s)
	if n < 1 || n > 65535 {
		return 0, fmt.Errorf("%w: port %d out of range 1-65535", ErrBadAuthority, n)
	}
	return n, nil
}

func canonicalHost(host string, bracketed bool, port int) (Target, error) {
	if bracketed {
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return Target{}, fmt.Errorf("%w: [%s] is not an IPv6 address without zone", ErrBadAuthority, host)
		}
		a = a.Unmap()
		return Target{Host: a.String(), IP: a, Port: port}, nil
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Is6() {
			return Target{}, fmt.Errorf("%w: IPv6 literal %q must be bracketed", ErrBadAuthority, host)
		}
		return Target{Host: a.String(), IP: a, Port: port}, nil
	}
	name, ok := policy.CanonicalHostName(host)
	if !ok {
		return Target{}, fmt.Errorf("%w: %q is not a valid DNS host name (IDNA, letters, digits, hyphens; a numeric last label is read as an IP address by some resolvers and is refused)", ErrBadAuthority, host)
	}
	return Target{Host: name, Port: port}, nil
}
