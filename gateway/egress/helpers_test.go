package egress

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nemoclave/nemoclave/policy"
)

// testResolver maps names to addresses and records every lookup, so tests
// can prove a name never reached DNS.
type testResolver struct {
	mu    sync.Mutex
	hosts map[string][]netip.Addr
	calls []string
}

func newResolver(m map[string]string) *testResolver {
	r := &testResolver{hosts: map[string][]netip.Addr{}}
	for name, addrs := range m {
		for _, a := range strings.Split(addrs, ",") {
			r.hosts[name] = append(r.hosts[name], netip.MustParseAddr(a))
		}
	}
	return r
}

func (r *testResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, host)
	if a, ok := r.hosts[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func (r *testResolver) lookups() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

// testPKI is a CA for the fake upstream servers.
type testPKI struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
	pem  []byte
}

var (
	pkiOnce sync.Once
	pki     *testPKI
)

func upstreamPKI(t testing.TB) *testPKI {
	pkiOnce.Do(func() {
		ca, err := NewCA("upstream-test-root")
		if err != nil {
			panic(err)
		}
		pool := x509.NewCertPool()
		pool.AddCert(ca.cert)
		pki = &testPKI{cert: ca.cert, key: ca.key, pool: pool, pem: ca.CertPEM()}
	})
	return pki
}

func (k *testPKI) serverCert(t testing.TB, names ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if a, err := netip.ParseAddr(n); err == nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, a.AsSlice())
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, k.cert, &key.PublicKey, k.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// tlsUpstream starts an HTTPS server on loopback with a certificate for
// names and returns it with its port.
func tlsUpstream(t testing.TB, h http.Handler, names ...string) (*httptest.Server, int) {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{upstreamPKI(t).serverCert(t, names...)}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, srv.Listener.Addr().(*net.TCPAddr).Port
}

// plainUpstream starts an HTTP server on loopback.
func plainUpstream(t testing.TB, h http.Handler) (*httptest.Server, int) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, srv.Listener.Addr().(*net.TCPAddr).Port
}

// echoHandler answers with the method and raw request URI it received.
var echoHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintf(w, "%s %s", r.Method, r.RequestURI)
})

// countingListener is a raw TCP upstream that records whether anything
// connected and what it sent.
type countingListener struct {
	ln    net.Listener
	mu    sync.Mutex
	conns int
	data  []byte
}

func rawUpstream(t testing.TB, echo bool) (*countingListener, int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			cl.mu.Lock()
			cl.conns++
			cl.mu.Unlock()
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					cl.mu.Lock()
					cl.data = append(cl.data, buf[:n]...)
					cl.mu.Unlock()
					if echo && n > 0 {
						c.Write(buf[:n])
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return cl, ln.Addr().(*net.TCPAddr).Port
}

func (c *countingListener) accepted() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conns
}

// env is one proxy under test with its resolver and audit directory.
type env struct {
	p        *Proxy
	res      *testResolver
	auditDir string
	reg      *prometheus.Registry
}

type envOpt func(*Config)

func withoutLoopback(c *Config) { c.UnsafeAllowLoopback = false }

func newEnv(t testing.TB, hosts map[string]string, opts ...envOpt) *env {
	t.Helper()
	res := newResolver(hosts)
	reg := prometheus.NewRegistry()
	cfg := Config{
		AuditDir: filepath.Join(t.TempDir(), "audit"),
		Registry: reg,
		Resolver: res,
		HostAddrs: func() []netip.Addr {
			return []netip.Addr{netip.MustParseAddr("127.0.0.77"), netip.MustParseAddr("203.0.113.7")}
		},
		UpstreamRootCAs:     upstreamPKI(t).pool,
		UnsafeAllowLoopback: true,
		HeaderTimeout:       5 * time.Second,
		DialTimeout:         5 * time.Second,
		ApprovalTimeout:     30 * time.Second,
	}
	for _, o := range opts {
		o(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return &env{p: p, res: res, auditDir: cfg.AuditDir, reg: reg}
}

// serve starts the proxy for sandboxID with pol and returns its address.
func (e *env) serve(t testing.TB, sandboxID string, pol *policy.Policy) string {
	t.Helper()
	if pol != nil {
		if err := e.p.SetPolicy(sandboxID, pol); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.p.Serve(ctx, ln, sandboxID)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}

// events reads the audit log.
func (e *env) events(t testing.TB) []Event {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.auditDir, auditName))
	if err != nil {
		t.Fatal(err)
	}
	var out []Event
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l == "" {
			continue
		}
		var ev Event
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("audit line %q: %v", l, err)
		}
		out = append(out, ev)
	}
	return out
}

// waitEvent polls the audit log for an event matching f (events of allowed
// tunnels are written when they close, a moment after the client sees it).
func (e *env) waitEvent(t testing.TB, what string, f func(Event) bool) Event {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		for _, ev := range e.events(t) {
			if f(ev) {
				return ev
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no audit event %s in %+v", what, e.events(t))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pol builds a valid policy from endpoints.
func pol(rev int, unknown policy.UnknownHosts, eps ...policy.Endpoint) *policy.Policy {
	return &policy.Policy{
		Name: "test", Revision: rev, UnknownHosts: unknown,
		Filesystem: policy.Filesystem{ReadOnly: []string{"/usr"}},
		Network:    []policy.NetworkRule{{Name: "test-rule", Source: "blueprint", Endpoints: eps}},
	}
}

func ep(host string, port int) policy.Endpoint {
	return policy.Endpoint{Host: host, Ports: []int{port}}
}

// connect sends CONNECT authority and returns the connection and status.
func connect(t testing.TB, proxyAddr, authority string, extraHeaders ...string) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	c, err := net.DialTimeout("tcp", proxyAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	req := "CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n"
	for _, h := range extraHeaders {
		req += h + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatalf("CONNECT %s: %v", authority, err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body = io.NopCloser(strings.NewReader(string(b)))
	}
	return c, br, resp
}

func body(t testing.TB, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// tunnelTLS opens a CONNECT tunnel and runs a TLS handshake in it with the
// given SNI, trusting roots.
func tunnelTLS(t testing.TB, proxyAddr, authority, sni string, roots *x509.CertPool) (*tls.Conn, error) {
	t.Helper()
	c, br, resp := connect(t, proxyAddr, authority)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("CONNECT status %d: %s", resp.StatusCode, body(t, resp))
	}
	if br.Buffered() > 0 {
		t.Fatalf("proxy sent %d bytes after the CONNECT response", br.Buffered())
	}
	tc := tls.Client(c, &tls.Config{ServerName: sni, RootCAs: roots, NextProtos: []string{"http/1.1"}})
	if err := tc.Handshake(); err != nil {
		return nil, err
	}
	return tc, nil
}

// roundTrip writes a raw request on c and reads the response.
func roundTrip(t testing.TB, c net.Conn, br *bufio.Reader, raw string) *http.Response {
	t.Helper()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading response to %q: %v", raw, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(strings.NewReader(string(b)))
	return resp
}

// plainRequest opens a new connection to the proxy and sends one raw
// absolute-form request.
func plainRequest(t testing.TB, proxyAddr, raw string) *http.Response {
	t.Helper()
	c, err := net.DialTimeout("tcp", proxyAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return roundTrip(t, c, bufio.NewReader(c), raw)
}

// captureHello returns the first TLS record a Go client sends for cfg.
func captureHello(t testing.TB, cfg *tls.Config) []byte {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go func() {
		tls.Client(a, cfg).Handshake()
	}()
	rec, err := ReadClientHelloRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func certPool(pemBytes []byte) *x509.CertPool {
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(pemBytes)
	return p
}

func x509VerifyOpts(roots *x509.CertPool, name string) x509.VerifyOptions {
	return x509.VerifyOptions{Roots: roots, DNSName: name}
}

func tlsConfigWithRoots(roots *x509.CertPool) *tls.Config {
	return &tls.Config{RootCAs: roots}
}
