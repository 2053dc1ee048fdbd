package policy

import (
	"net/netip"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// hostProfile is the IDNA profile shared by host patterns and by the egress
// gateway's canonicaliser, so a pattern and a request name are reduced to the
// same ASCII form by the same rules (UTS #46 lookup mapping, strict STD3
// labels, DNS length limits, BiDi rule).
var hostProfile = idna.New(
	idna.MapForLookup(),
	idna.BidiRule(),
	idna.ValidateLabels(true),
	idna.StrictDomainName(true),
	idna.VerifyDNSLength(true),
	idna.Transitional(false),
)

// CanonicalHostName reduces a DNS name to the form every matcher compares:
// IDNA A-labels (punycode), lower case, no trailing dot. It refuses names
// that are not valid DNS host names (underscores, empty labels, labels over
// 63 octets, a numeric last label that some resolvers read as an IPv4
// address). It does not accept IP literals; use netip for those.
func CanonicalHostName(name string) (string, bool) {
	name = strings.TrimSuffix(name, ".")
	if name == "" || strings.HasSuffix(name, ".") || !utf8.ValidString(name) {
		return "", false
	}
	ascii, err := hostProfile.ToASCII(name)
	if err != nil || ascii == "" {
		return "", false
	}
	// The result must itself be canonical: a label that maps to U+FFFD
	// or otherwise fails to round-trip is refused.
	if again, err := hostProfile.ToASCII(ascii); err != nil || again != ascii {
		return "", false
	}
	ascii = strings.ToLower(ascii)
	labels := strings.Split(ascii, ".")
	for _, l := range labels {
		if !validLabel(l) {
			return "", false
		}
	}
	if numericLabel(labels[len(labels)-1]) {
		return "", false
	}
	return ascii, true
}

func validLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// numericLabel reports a label that inet_aton-style parsers read as part of
// an IPv4 address ("1", "0x7f", "017"), which must never be a host name.
func numericLabel(l string) bool {
	digits := "0123456789"
	if rest, ok := strings.CutPrefix(l, "0x"); ok {
		l, digits = rest, "0123456789abcdef"
	}
	for i := 0; i < len(l); i++ {
		if !strings.ContainsRune(digits, rune(l[i])) {
			return false
		}
	}
	return true
}

// canonicalPattern returns the comparable form of an endpoint host pattern:
// an IP literal in netip's canonical text, an exact name, or "*." followed by
// a canonical suffix. ok is false for patterns that can never match (they
// also fail Validate).
func canonicalPattern(pattern string) (canon string, wildcard bool, ok bool) {
	p := strings.TrimSuffix(strings.TrimSpace(pattern), ".")
	if p == "" || p == "*" {
		return "", false, false
	}
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(p, "["), "]")); err == nil {
		if a.Zone() != "" {
			return "", false, false
		}
		return a.Unmap().String(), false, true
	}
	if rest, found := strings.CutPrefix(p, "*."); found {
		suffix, ok := CanonicalHostName(rest)
		if !ok {
			return "", false, false
		}
		return suffix, true, true
	}
	if strings.Contains(p, "*") {
		return "", false, false
	}
	name, ok := CanonicalHostName(p)
	return name, false, ok
}

// MatchHost reports whether host matches pattern. host must already be
// canonical (CanonicalHostName, or netip.Addr.String of an unmapped address).
//
// Rules: an exact pattern matches only the same name; "*.example.com"
// matches one or more labels before ".example.com" and never
// "example.com" itself; an IP literal pattern matches only the same
// address; a wildcard never matches an IP literal; "*" matches nothing.
func MatchHost(pattern, host string) bool {
	canon, wildcard, ok := canonicalPattern(pattern)
	if !ok || host == "" {
		return false
	}
	if !wildcard {
		return canon == host
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return false
	}
	prefix, found := strings.CutSuffix(host, "."+canon)
	return found && prefix != ""
}

// Match is the endpoint chosen for one host and port.
type Match struct {
	// Rule is the network rule that holds Endpoint.
	Rule *NetworkRule
	// Endpoint is the most specific endpoint whose host pattern and ports
	// match; nil when none does.
	Endpoint *Endpoint
	// HostKnown is true when some endpoint names the host, whatever its
	// ports: a request on another port is a port violation, not an
	// unknown host (it is denied, never held for approval).
	HostKnown bool
}

// Lookup finds the endpoint that governs host:port. host must be canonical.
// When several endpoints match, an exact pattern beats a wildcard, a longer
// wildcard suffix beats a shorter one, and among equals the first in policy
// order wins, so the flags (inspect, allow_private, allow_opaque) of the most
// specific rule apply.
func (p *Policy) Lookup(host string, port int) Match {
	var m Match
	if p == nil {
		return m
	}
	best := -1
	for ri := range p.Network {
		r := &p.Network[ri]
		for ei := range r.Endpoints {
			e := &r.Endpoints[ei]
			if !MatchHost(e.Host, host) {
				continue
			}
			m.HostKnown = true
			if !hasPort(e.EffectivePorts(), port) {
				continue
			}
			score := specificity(e.Host)
			if score > best {
				best = score
				m.Rule, m.Endpoint = r, e
			}
		}
	}
	return m
}

func hasPort(ports []int, port int) bool {
	for _, p := range ports {
		if p == port {
			return true
		}
	}
	return false
}

// specificity orders matching patterns: exact names and literals above every
// wildcard, longer wildcard suffixes above shorter ones.
func specificity(pattern string) int {
	canon, wildcard, _ := canonicalPattern(pattern)
	if wildcard {
		return len(canon)
	}
	return 1 << 20
}
