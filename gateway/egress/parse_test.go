package egress

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"

	"github.com/nemoclave/nemoclave/policy"
)

func TestParseAuthority(t *testing.T) {
	t.Parallel()
	cases := map[string]string{ // input -> canonical String(), "" for refused
		"api.github.com:443":      "api.github.com:443",
		"API.GitHub.com.:443":     "api.github.com:443",
		"bücher.example:443":      "xn--bcher-kva.example:443",
		"127.0.0.1:80":            "127.0.0.1:80",
		"[::1]:443":               "[::1]:443",
		"[::ffff:127.0.0.1]:443":  "127.0.0.1:443",
		"[::ffff:7f00:1]:443":     "127.0.0.1:443",
		"[64:ff9b::1.2.3.4]:443":  "[64:ff9b::102:304]:443",
		"::1:443":                 "",
		"[fe80::1%eth0]:443":      "",
		"[127.0.0.1]:443":         "",
		"api.github.com":          "",
		"api.github.com:":         "",
		"api.github.com:0":        "",
		"api.github.com:65536":    "",
		"api.github.com:+443":     "",
		"api.github.com:0443":     "",
		"user@api.github.com:443": "",
		"api.github.com:443/x":    "",
		"api%2egithub.com:443":    "",
		"api.github.com :443":     "",
		"a..b:443":                "",
		"..:443":                  "",
		".:443":                   "",
		":443":                    "",
		"127.1:443":               "",
		"0177.0.0.1:443":          "",
		"2130706433:443":          "",
		"0x7f000001:443":          "",
		"under_score.com:443":     "",
	}
	for in, want := range cases {
		got, err := ParseAuthority(in)
		if want == "" {
			if err == nil {
				t.Errorf("ParseAuthority(%q) = %v, want refusal", in, got)
			} else if !errors.Is(err, ErrBadAuthority) {
				t.Errorf("ParseAuthority(%q): error %v does not wrap ErrBadAuthority", in, err)
			}
			continue
		}
		if err != nil || got.String() != want {
			t.Errorf("ParseAuthority(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
}

func TestParseHostHeader(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"example.com": "example.com:80", "example.com:8080": "example.com:8080", "[::1]": "[::1]:80",
		"[::1]:81": "[::1]:81", "::1": "", "Example.COM.": "example.com:80",
	} {
		got, err := ParseHostHeader(in, 80)
		if (err != nil) != (want == "") || (err == nil && got.String() != want) {
			t.Errorf("ParseHostHeader(%q) = %v, %v; want %q", in, got, err, want)
		}
	}
}

func FuzzParseAuthority(f *testing.F) {
	for _, s := range []string{"api.github.com:443", "[::ffff:127.0.0.1]:443", "bücher.example:443", "a..b:1", "127.1:80", "x:0443", "[fe80::1%25eth0]:1", "ＡＰＩ.example:443"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := ParseAuthority(s)
		if err != nil {
			return
		}
		if tg.Port < 1 || tg.Port > 65535 {
			t.Fatalf("%q: port %d", s, tg.Port)
		}
		if strings.ContainsAny(tg.Host, "@/\\%?# \t\r\n") || tg.Host != strings.ToLower(tg.Host) || strings.HasSuffix(tg.Host, ".") {
			t.Fatalf("%q: non-canonical host %q", s, tg.Host)
		}
		if tg.IsLiteral() {
			if tg.IP.Is4In6() || tg.IP.String() != tg.Host {
				t.Fatalf("%q: literal not canonical: %v %q", s, tg.IP, tg.Host)
			}
		} else if _, err := netip.ParseAddr(tg.Host); err == nil {
			t.Fatalf("%q: name %q parses as an address", s, tg.Host)
		}
		again, err := ParseAuthority(tg.String())
		if err != nil || again != tg {
			t.Fatalf("%q: canonical form %q does not round-trip: %v %v", s, tg.String(), again, err)
		}
	})
}

func TestParseClientHelloFromRealClients(t *testing.T) {
	t.Parallel()
	for _, cfg := range []*tls.Config{
		{ServerName: "api.github.com", NextProtos: []string{"h2", "http/1.1"}},
		{ServerName: "api.github.com", MaxVersion: tls.VersionTLS12},
		{ServerName: "api.github.com", MinVersion: tls.VersionTLS13},
	} {
		rec := captureHello(t, cfg)
		h, err := ParseClientHello(rec)
		if err != nil {
			t.Fatalf("%+v: %v", cfg, err)
		}
		if len(h.ServerNames) != 1 || h.ServerNames[0] != "api.github.com" || h.ECH {
			t.Fatalf("parsed %+v", h)
		}
	}
	noSNI := captureHello(t, &tls.Config{InsecureSkipVerify: true})
	if h, err := ParseClientHello(noSNI); err != nil || len(h.ServerNames) != 0 {
		t.Fatalf("no-SNI hello: %+v %v", h, err)
	}
}

func TestParseClientHelloRefusals(t *testing.T) {
	t.Parallel()
	real := captureHello(t, &tls.Config{ServerName: "a.example"})
	trailing := append([]byte(nil), real...)
	trailing = append(trailing, 0)
	trailing[3], trailing[4] = byte((len(trailing)-5)>>8), byte(len(trailing)-5)
	cases := map[string]struct {
		rec  []byte
		want error
	}{
		"split":        {splitRecord(real, 60)[:5+60], ErrSplitHello},
		"not TLS":      {[]byte("GET / HTTP/1.1\r\n"), ErrNotTLS},
		"trailing":     {trailing, ErrMalformedHello},
		"truncated":    {real[:len(real)-3], ErrMalformedHello},
		"empty record": {[]byte{0x16, 3, 1, 0, 0}, ErrMalformedHello},
		"dup ext":      {dupExt(), ErrDuplicateExt},
	}
	for name, c := range cases {
		if _, err := ParseClientHello(c.rec); !errors.Is(err, c.want) {
			t.Errorf("%s: err %v, want %v", name, err, c.want)
		}
	}
	h, err := ParseClientHello(buildHello([]string{"a.example", "b.example"}, true))
	if err != nil || len(h.ServerNames) != 2 || !h.ECH {
		t.Fatalf("several names + ECH: %+v %v", h, err)
	}
}

// dupExt builds a hello carrying the server_name extension twice.
func dupExt() []byte {
	body := []byte{0, 12, 0, 0, 9}
	body = append(body, "a.example"...)
	exts := appendExt(appendExt(nil, extServerName, body), extServerName, body)
	return helloWithExts(exts)
}

func FuzzParseClientHello(f *testing.F) {
	f.Add(buildHello([]string{"api.github.com"}, false))
	f.Add(buildHello(nil, false))
	f.Add(buildHello([]string{"a.example", "b.example"}, true))
	f.Add([]byte{0x16, 3, 1, 0, 4, 1, 0, 0, 0})
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, rec []byte) {
		h, err := ParseClientHello(rec)
		if err != nil {
			if h != nil {
				t.Fatal("hello returned with an error")
			}
			return
		}
		for _, n := range h.ServerNames {
			if n == "" || !bytes.Contains(rec, []byte(n)) {
				t.Fatalf("server name %q not taken from the record", n)
			}
		}
		// Whatever parses must also be what ReadClientHelloRecord reads.
		got, err := ReadClientHelloRecord(bytes.NewReader(rec))
		if err != nil || !bytes.Equal(got, rec) {
			t.Fatalf("record reader disagrees: %v", err)
		}
	})
}

func TestNormalisePath(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, judged, forward string }{
		{"/", "/", "/"},
		{"/a/b", "/a/b", "/a/b"},
		{"/a/b/", "/a/b", "/a/b/"},
		{"//a///b", "/a/b", "/a/b"},
		{"/a/./b/../c", "/a/c", "/a/c"},
		{"/../../etc/passwd", "/etc/passwd", "/etc/passwd"},
		{"/a/%2e%2e/b", "/b", "/b"},
		{"/a/%2E/b", "/a/b", "/a/b"},
		{"/a%2Fb", "/a/b", "/a/b"},
		{"/a%2f..%2fb", "/b", "/b"},
		{"/a/%62", "/a/b", "/a/%62"},
		{"/a%20b", "/a b", "/a%20b"},
		{"/a/..", "/", "/"},
		{"/a\\b", "", ""},
		{"/a%5cb", "", ""},
		{"/a;x=1", "", ""},
		{"/a%3bx", "", ""},
		{"/a%00", "", ""},
		{"/a%zz", "", ""},
		{"a", "", ""},
		{"/a\x7f", "", ""},
	}
	for _, c := range cases {
		j, f, err := NormalisePath(c.in)
		if c.judged == "" {
			if err == nil {
				t.Errorf("NormalisePath(%q) = %q, %q; want refusal", c.in, j, f)
			}
			continue
		}
		if err != nil || j != c.judged || f != c.forward {
			t.Errorf("NormalisePath(%q) = %q, %q, %v; want %q, %q", c.in, j, f, err, c.judged, c.forward)
		}
	}
}

func TestMatchPath(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		pat, path string
		want      bool
	}{
		{"/repos/**", "/repos/a/b", true}, {"/repos/**", "/repos", true}, {"/repos/**", "/reposx", false},
		{"/repos/*", "/repos/a", true}, {"/repos/*", "/repos/a/b", false}, {"/a/*.git/info/refs", "/a/x.git/info/refs", true},
		{"/**/refs", "/a/b/refs", true}, {"/**", "/", true}, {"/", "/", true}, {"/a", "/a/b", false},
		{"/a/**/c", "/a/c", true}, {"/a/**/c", "/a/b/b/c", true}, {"/a/**/c", "/a/b/d", false},
	} {
		if got := matchPath(c.pat, c.path); got != c.want {
			t.Errorf("matchPath(%q, %q) = %v", c.pat, c.path, got)
		}
	}
}

func FuzzNormalisePath(f *testing.F) {
	for _, s := range []string{"/", "/a/../b", "//a//b/", "/%2e%2e/%2F", "/a%2f..%2fb", "/a;b", "/%zz", "/ok/%2E%2E%2Fadmin"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		judged, forward, err := NormalisePath(raw)
		if err != nil {
			return
		}
		for _, seg := range strings.Split(judged, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("%q: judged %q keeps a dot segment", raw, judged)
			}
		}
		if strings.Contains(judged, "//") || (judged != "/" && strings.HasSuffix(judged, "/")) {
			t.Fatalf("%q: judged %q not normal", raw, judged)
		}
		// What is forwarded must judge the same when normalised again, so
		// the upstream sees the path that was judged.
		j2, f2, err := NormalisePath(forward)
		if err != nil || j2 != judged || f2 != forward {
			t.Fatalf("%q: forward %q re-normalises to %q %q %v (judged %q)", raw, forward, j2, f2, err, judged)
		}
	})
}

func TestAddrClass(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]string{
		"8.8.8.8": "", "2606:4700::1111": "", "64:ff9b::808:808": "", "2002:808:808::1": "",
		"127.0.0.1": "loopback", "::1": "loopback", "::ffff:127.0.0.1": "loopback", "0.0.0.0": "unspecified",
		"::": "unspecified", "169.254.169.254": "metadata", "fd00:ec2::254": "metadata", "169.254.1.1": "link-local",
		"fe80::1": "link-local", "224.0.0.1": "multicast", "ff02::1": "multicast", "10.0.0.1": "private",
		"172.16.5.4": "private", "192.168.1.1": "private", "100.64.0.1": "private", "fc00::1": "private",
		"64:ff9b::7f00:1": "loopback", "64:ff9b::a9fe:a9fe": "metadata", "2002:7f00:1::": "loopback",
		"2002:a00:1::": "private", "255.255.255.255": "reserved", "::7f00:1": "reserved", "2001:0:1::1": "reserved",
		"64:ff9b:1::1": "reserved", "100.100.100.200": "metadata",
	} {
		got := addrClass(netip.MustParseAddr(addr), false, false)
		if (want == "") != (got == "") || !strings.Contains(got, want) {
			t.Errorf("addrClass(%s) = %q, want %q", addr, got, want)
		}
	}
	if got := addrClass(netip.MustParseAddr("10.0.0.1"), true, false); got != "" {
		t.Errorf("allow_private: 10.0.0.1 refused: %s", got)
	}
	if got := addrClass(netip.MustParseAddr("64:ff9b::a00:1"), true, false); got != "" {
		t.Errorf("allow_private: NAT64 of 10.0.0.1 refused: %s", got)
	}
	if got := addrClass(netip.MustParseAddr("169.254.169.254"), true, true); got == "" {
		t.Error("metadata allowed with every knob on")
	}
}

func TestJudgeHello(t *testing.T) {
	t.Parallel()
	tg, _ := ParseAuthority("api.example.com:443")
	lit, _ := ParseAuthority("127.0.0.1:443")
	pass := policy.Endpoint{Host: "api.example.com"}
	opaque := policy.Endpoint{Host: "api.example.com", AllowOpaque: true}
	insp := policy.Endpoint{Host: "api.example.com", Inspect: true}
	both := policy.Endpoint{Host: "api.example.com", Inspect: true, AllowOpaque: true}
	ok, bad := true, false
	for _, c := range []struct {
		name string
		t    Target
		rec  []byte
		err  error
		ep   policy.Endpoint
		want bool
	}{
		{"match", tg, buildHello([]string{"api.example.com"}, false), nil, pass, ok},
		{"match upper case", tg, buildHello([]string{"API.Example.com"}, false), nil, pass, ok},
		{"mismatch", tg, buildHello([]string{"evil.example"}, false), nil, pass, bad},
		{"mismatch opaque", tg, buildHello([]string{"evil.example"}, false), nil, opaque, bad},
		{"mismatch inspected ECH", tg, buildHello([]string{"evil.example"}, true), nil, insp, bad},
		{"no SNI", tg, buildHello(nil, false), nil, pass, bad},
		{"no SNI opaque", tg, buildHello(nil, false), nil, opaque, ok},
		{"no SNI inspected", tg, buildHello(nil, false), nil, both, bad},
		{"no SNI literal", lit, buildHello(nil, false), nil, pass, ok},
		{"ECH pass-through", tg, buildHello([]string{"api.example.com"}, true), nil, pass, bad},
		{"ECH opaque", tg, buildHello([]string{"api.example.com"}, true), nil, opaque, ok},
		{"ECH inspected (outer SNI checked)", tg, buildHello([]string{"api.example.com"}, true), nil, insp, ok},
		{"non-TLS", tg, []byte("G"), ErrNotTLS, pass, bad},
		{"non-TLS opaque", tg, []byte("G"), ErrNotTLS, opaque, ok},
		{"non-TLS inspected", tg, []byte("G"), ErrNotTLS, both, bad},
		{"read error", tg, nil, io.ErrUnexpectedEOF, opaque, bad},
	} {
		_, _, refusal := judgeHello(c.t, c.rec, c.err, c.ep)
		if (refusal == "") != c.want {
			t.Errorf("%s: refusal %q, want allowed=%v", c.name, refusal, c.want)
		}
	}
}
