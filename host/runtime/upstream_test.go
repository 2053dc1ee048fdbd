package runtime

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/gateway/egress"
	"github.com/nemoclave/nemoclave/policy"
)

// hostsResolver answers from a map, so no real DNS is asked.
type hostsResolver map[string]string

func (h hostsResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := h[host]; ok {
		return []netip.Addr{netip.MustParseAddr(a)}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// corporatePKI is a corporate root CA and a server certificate it signed:
// what a TLS-inspecting corporate network presents instead of public CAs.
type corporatePKI struct {
	caPEM []byte
	leaf  tls.Certificate
}

func newCorporatePKI(t *testing.T, names ...string) corporatePKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Example Corp Inspection Root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return corporatePKI{
		caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		leaf:  tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
	}
}

// squid is one squid process of this test: its own config, logs and
// loopback port.
type squid struct {
	addr, dir string
}

// startSquid runs squid in the foreground as the corporate proxy. hosts
// is squid's own name table (it never asks real DNS). Skips when squid is
// not installed, naming the script that installs it.
func startSquid(t *testing.T, hosts map[string]string) *squid {
	t.Helper()
	bin := os.Getenv("NEMOCLAVE_TEST_SQUID")
	if bin == "" {
		bin, _ = exec.LookPath("squid")
	}
	if bin == "" {
		if _, err := os.Stat("/usr/sbin/squid"); err == nil {
			bin = "/usr/sbin/squid"
		}
	}
	if bin == "" {
		t.Skip("squid is not installed: run `bash scripts/test-squid.sh` (make test-k8s does)")
	}
	// Not t.TempDir: squid started as root drops to its own user, which
	// must be able to write its logs here.
	dir, err := os.MkdirTemp("", "nemoclave-squid-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	var hl strings.Builder
	for name, ip := range hosts {
		fmt.Fprintf(&hl, "%s %s\n", ip, name)
	}
	if err := os.WriteFile(filepath.Join(dir, "hosts"), []byte(hl.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	conf := strings.Join([]string{
		"http_port " + addr,
		"pid_filename " + filepath.Join(dir, "squid.pid"),
		"access_log stdio:" + filepath.Join(dir, "access.log"),
		"cache_log " + filepath.Join(dir, "cache.log"),
		"cache_store_log none",
		"coredump_dir " + dir,
		"hosts_file " + filepath.Join(dir, "hosts"),
		// Nothing listens there: names outside the hosts file fail fast.
		"dns_nameservers 127.0.0.1",
		"dns_timeout 2 seconds",
		"cache deny all",
		"pinger_enable off",
		"netdb_filename none",
		"logfile_rotate 0",
		"shutdown_lifetime 0 seconds",
		"acl localnet src 127.0.0.0/8",
		"http_access allow localnet",
		"http_access deny all",
	}, "\n") + "\n"
	cf := filepath.Join(dir, "squid.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-N", "-f", cf)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			break
		}
		select {
		case err := <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "cache.log"))
			t.Fatalf("squid exited: %v\n%s", err, log)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "cache.log"))
			t.Fatalf("squid did not listen on %s within 60 s\n%s", addr, log)
		}
	}
	return &squid{addr: addr, dir: dir}
}

// accessLog is squid's access log so far. squid writes a line when a
// CONNECT tunnel closes, so callers close theirs first and poll.
func (s *squid) accessLog() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "access.log"))
	return string(b)
}

func (s *squid) waitLog(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(s.accessLog(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("squid's access log has no %q after 30 s:\n%s", want, s.accessLog())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestUpstreamProxy_SquidFromEnvironment is the corporate network: the
// daemon's environment names squid in HTTPS_PROXY and exempts one domain
// in NO_PROXY, and a corporate CA signs the upstream. The egress
// configuration the runtime builds from it must send the allowed host
// through squid (its access log shows the CONNECT), verify the upstream
// with the corporate CA (inspected endpoint) and hand the sandbox a trust
// bundle holding it (passthrough tunnel), and dial the NO_PROXY host
// directly (squid, which cannot resolve it, never sees it).
func TestUpstreamProxy_SquidFromEnvironment(t *testing.T) {
	const viaSquid, direct = "api.corp-upstream.test", "internal.corp-direct.test"
	// The upstream is on 127.0.0.2: 127.0.0.1 is one of the gateway host's
	// own addresses, which the egress proxy never lets a sandbox reach.
	const upstreamIP = "127.0.0.2"
	sq := startSquid(t, map[string]string{viaSquid: upstreamIP})
	pki := newCorporatePKI(t, viaSquid, direct)
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "upstream %s %s", r.Host, r.URL.Path)
	}))
	up.TLS = &tls.Config{Certificates: []tls.Certificate{pki.leaf}}
	ln0, err := net.Listen("tcp", upstreamIP+":0")
	if err != nil {
		t.Fatal(err)
	}
	up.Listener.Close()
	up.Listener = ln0
	up.StartTLS()
	t.Cleanup(up.Close)
	port := up.Listener.Addr().(*net.TCPAddr).Port
	caFile := filepath.Join(t.TempDir(), "corp-ca.pem")
	if err := os.WriteFile(caFile, pki.caPEM, 0o600); err != nil {
		t.Fatal(err)
	}

	t.Setenv("NEMOCLAVE_UPSTREAM_PROXY", "")
	t.Setenv("NEMOCLAVE_NO_PROXY", "")
	t.Setenv("HTTPS_PROXY", sq.addr) // no scheme, as it is often set
	t.Setenv("NO_PROXY", "localhost,.corp-direct.test")
	cfg, err := egressConfig(Options{
		Home: t.TempDir(), UpstreamProxy: EnvUpstreamProxy(), UpstreamNoProxy: EnvNoProxy(), UpstreamCAFile: caFile,
		EgressResolver: hostsResolver{viaSquid: upstreamIP, direct: upstreamIP}, UnsafeAllowLoopback: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			audit, _ := os.ReadFile(filepath.Join(cfg.AuditDir, "egress.jsonl"))
			cache, _ := os.ReadFile(filepath.Join(sq.dir, "cache.log"))
			t.Logf("egress audit:\n%s\nsquid access log:\n%s\nsquid cache log (tail):\n%s", audit, sq.accessLog(), tail(string(cache), 2000))
		}
	})
	p, err := egress.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	pol := &policy.Policy{
		Name: "corp", Revision: 1, UnknownHosts: policy.UnknownDeny,
		Filesystem: policy.Filesystem{ReadOnly: []string{"/usr"}},
		Network: []policy.NetworkRule{{Name: "corp", Source: "blueprint", Endpoints: []policy.Endpoint{
			{Host: viaSquid, Ports: []int{port}, Inspect: true},
			{Host: direct, Ports: []int{port}},
		}}},
	}
	if err := p.SetPolicy("sb", pol); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { defer close(served); p.Serve(ctx, ln, "sb") }()
	t.Cleanup(func() { cancel(); <-served })
	bundle, err := p.TrustBundle("sb")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(bundle), strings.TrimSpace(string(pki.caPEM))) {
		t.Fatal("the sandbox's trust bundle lacks the corporate CA")
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(bundle)

	// Inspected: the gateway terminates TLS with the sandbox CA and
	// verifies the upstream (reached through squid) with the corporate CA.
	if got := getThrough(t, ln.Addr().String(), viaSquid, port, roots); got != "upstream "+viaSquid+":"+strconv.Itoa(port)+" /via-squid" {
		t.Fatalf("inspected request through squid answered %q", got)
	}
	sq.waitLog(t, "CONNECT "+viaSquid+":"+strconv.Itoa(port))

	// Passthrough to a NO_PROXY host: the sandbox verifies the upstream
	// itself with the bundle, and squid never hears of it.
	if got := getThrough(t, ln.Addr().String(), direct, port, roots); got != "upstream "+direct+":"+strconv.Itoa(port)+" /direct" {
		t.Fatalf("direct request answered %q", got)
	}
	if l := sq.accessLog(); strings.Contains(l, direct) {
		t.Fatalf("the NO_PROXY host went through squid:\n%s", l)
	}
}

// getThrough opens a CONNECT tunnel through the egress gateway at gw,
// speaks TLS to host verified by roots, and returns the body of GET
// /via-squid or /direct (by host).
func getThrough(t *testing.T, gw, host string, port int, roots *x509.CertPool) string {
	t.Helper()
	path := "/direct"
	if strings.HasPrefix(host, "api.") {
		path = "/via-squid"
	}
	authority := host + ":" + strconv.Itoa(port)
	c, err := net.DialTimeout("tcp", gw, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", authority, authority)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatalf("CONNECT %s: %v", authority, err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("CONNECT %s: %s %s", authority, resp.Status, b)
	}
	if br.Buffered() > 0 {
		t.Fatal("gateway sent bytes after the CONNECT response")
	}
	tc := tls.Client(c, &tls.Config{ServerName: host, RootCAs: roots, MinVersion: tls.VersionTLS12})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("TLS to %s through the gateway: %v", host, err)
	}
	fmt.Fprintf(tc, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, authority)
	r, err := http.ReadResponse(bufio.NewReader(tc), nil)
	if err != nil {
		t.Fatalf("GET %s%s: %v", authority, path, err)
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestUpstreamProxy_RefusesWhatItCannotUse(t *testing.T) {
	home := t.TempDir()
	for _, bad := range []string{"https://proxy.corp:3128", "socks5://proxy.corp:1080", "http://"} {
		if _, err := egressConfig(Options{Home: home, UpstreamProxy: bad}); err == nil || !strings.Contains(err.Error(), "--upstream-proxy") {
			t.Errorf("upstream proxy %q: err %v, want a refusal naming --upstream-proxy", bad, err)
		}
	}
	notPEM := filepath.Join(home, "ca.txt")
	os.WriteFile(notPEM, []byte("not a certificate"), 0o600)
	for _, f := range []string{notPEM, filepath.Join(home, "missing.pem")} {
		if _, err := egressConfig(Options{Home: home, UpstreamCAFile: f}); err == nil || !strings.Contains(err.Error(), "--upstream-ca-file") {
			t.Errorf("CA file %s: err %v, want a refusal naming --upstream-ca-file", f, err)
		}
	}
	cfg, err := egressConfig(Options{Home: home, UpstreamProxy: "http://u:p@proxy.corp:8080"})
	if err != nil || cfg.UpstreamProxy.Host != "proxy.corp:8080" || cfg.UpstreamProxy.User.Username() != "u" {
		t.Fatalf("http proxy with credentials: %v %v", cfg.UpstreamProxy, err)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
