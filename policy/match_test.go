package policy

import (
	"strings"
	"testing"
)

func TestMatchHost(t *testing.T) {
	t.Parallel()
	cases := []struct {
		pattern, host string
		want          bool
	}{
		{"github.com", "github.com", true},
		{"github.com", "api.github.com", false},
		{"github.com", "evil-github.com", false},
		{"github.com", "github.com.evil.io", false},
		{"github.com.", "github.com", true},
		{"*.github.com", "api.github.com", true},
		{"*.github.com", "a.b.github.com", true},
		{"*.github.com", "github.com", false},
		{"*.github.com", "evilgithub.com", false},
		{"*.github.com", "api.github.com.evil.io", false},
		{"*", "github.com", false},
		{"*.", "github.com", false},
		{"a*.github.com", "ab.github.com", false},
		{"bücher.example", "xn--bcher-kva.example", true},
		{"*.bücher.example", "www.xn--bcher-kva.example", true},
		{"bücher.example", "bucher.example", false},
		{"127.0.0.1", "127.0.0.1", true},
		{"::ffff:127.0.0.1", "127.0.0.1", true},
		{"[::1]", "::1", true},
		{"*.0.0.1", "127.0.0.1", false},
		{"", "", false},
	}
	for _, c := range cases {
		if got := MatchHost(c.pattern, c.host); got != c.want {
			t.Errorf("MatchHost(%q, %q) = %v, want %v", c.pattern, c.host, got, c.want)
		}
	}
}

func TestCanonicalHostName(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"GitHub.COM.":                        "github.com",
		"BÜCHER.example":                     "xn--bcher-kva.example",
		"xn--bcher-kva.example":              "xn--bcher-kva.example",
		"a\u3002example":                     "a.example", // ideographic full stop maps to "."
		"example..com":                       "",
		"under_score.example":                "",
		"-lead.example":                      "",
		"127.1":                              "",
		"0x7f.0.0.1":                         "",
		"2130706433":                         "",
		"a.0x1f":                             "",
		"0xygen.example":                     "0xygen.example",
		"xn--zz.example":                     "",
		strings.Repeat("a", 64) + ".example": "",
	}
	for in, want := range cases {
		got, ok := CanonicalHostName(in)
		if ok != (want != "") || got != want {
			t.Errorf("CanonicalHostName(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

func TestLookupPrefersMostSpecific(t *testing.T) {
	t.Parallel()
	p := &Policy{Network: []NetworkRule{
		{Name: "wide", Endpoints: []Endpoint{{Host: "*.example.com", Ports: []int{443}}}},
		{Name: "narrow", Endpoints: []Endpoint{{Host: "*.api.example.com", Ports: []int{443}, Inspect: true}}},
		{Name: "exact", Endpoints: []Endpoint{{Host: "x.api.example.com", AllowPrivate: true}}},
	}}
	if m := p.Lookup("x.api.example.com", 443); m.Rule == nil || m.Rule.Name != "exact" {
		t.Fatalf("exact should win: %+v", m)
	}
	if m := p.Lookup("y.api.example.com", 443); m.Rule == nil || m.Rule.Name != "narrow" {
		t.Fatalf("longer wildcard should win: %+v", m)
	}
	if m := p.Lookup("y.example.com", 443); m.Rule == nil || m.Rule.Name != "wide" {
		t.Fatalf("wide: %+v", m)
	}
	if m := p.Lookup("y.example.com", 80); m.Endpoint != nil || !m.HostKnown {
		t.Fatalf("port 80 must be a known host without endpoint: %+v", m)
	}
	if m := p.Lookup("example.com", 443); m.HostKnown {
		t.Fatalf("apex matched a wildcard: %+v", m)
	}
}

func FuzzMatchHost(f *testing.F) {
	for _, s := range [][2]string{
		{"*.github.com", "api.github.com"}, {"github.com", "GitHub.com."}, {"*.bücher.example", "a.xn--bcher-kva.example"},
		{"127.0.0.1", "::ffff:127.0.0.1"}, {"*", "x"}, {"*.a", ".a"}, {"a.*.b", "a.x.b"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, host string) {
		canon, ok := CanonicalHostName(host)
		if !ok {
			return
		}
		got := MatchHost(pattern, canon)
		if got && ValidateHostPattern(pattern) != nil && strings.TrimSpace(pattern) == pattern && strings.ToLower(pattern) == pattern {
			// A pattern Validate refuses must never allow anything,
			// except spellings Validate rejects only for style.
			if pattern == "*" || pattern == "*." || strings.Contains(strings.TrimPrefix(pattern, "*."), "*") {
				t.Fatalf("invalid pattern %q matched %q", pattern, canon)
			}
		}
		if got && strings.HasPrefix(pattern, "*.") {
			suffix, ok := CanonicalHostName(strings.TrimPrefix(pattern, "*."))
			if !ok || !strings.HasSuffix(canon, "."+suffix) || canon == suffix {
				t.Fatalf("wildcard %q matched %q outside its suffix", pattern, canon)
			}
		}
		if got && !strings.HasPrefix(pattern, "*.") {
			c2, ok := CanonicalHostName(pattern)
			if ok && c2 != canon {
				t.Fatalf("exact %q (%q) matched %q", pattern, c2, canon)
			}
		}
		// Canonicalisation is idempotent.
		if again, ok := CanonicalHostName(canon); !ok || again != canon {
			t.Fatalf("CanonicalHostName not idempotent: %q -> %q -> %q (%v)", host, canon, again, ok)
		}
	})
}
