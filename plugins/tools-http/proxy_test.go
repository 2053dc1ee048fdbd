package main

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/tools"
)

// helperEnv makes the test binary serve the plugin instead of running
// tests, so the proxy test runs the plugin as the host does: a separate
// process whose environment holds nothing but what the host passes.
const helperEnv = "NEMOCLAVE_TOOLS_HTTP_TEST_PLUGIN"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// recordingProxy is a minimal forward proxy: CONNECT tunnels go to
// tlsBackend, absolute-form requests to plainBackend, whatever host they
// name, and hosts named "denied.example" get 403 as the egress proxy
// would answer. It records every target it was asked for.
type recordingProxy struct {
	tlsBackend, plainBackend string

	mu      sync.Mutex
	targets []string
}

func (p *recordingProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	target := r.Host
	if r.Method != http.MethodConnect {
		target = r.URL.Host
	}
	p.mu.Lock()
	p.targets = append(p.targets, r.Method+" "+target)
	p.mu.Unlock()
	if strings.HasPrefix(target, "denied.example") {
		http.Error(w, "denied by policy", http.StatusForbidden)
		return
	}
	if r.Method == http.MethodConnect {
		up, err := net.Dial("tcp", p.tlsBackend)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			up.Close()
			return
		}
		fmt.Fprint(conn, "HTTP/1.1 200 Connection established\r\n\r\n")
		go func() { io.Copy(up, buf); up.Close() }()
		io.Copy(conn, up)
		conn.Close()
		return
	}
	if !r.URL.IsAbs() {
		http.Error(w, "not a proxy request", http.StatusBadRequest)
		return
	}
	out, _ := http.NewRequest(r.Method, "http://"+p.plainBackend+r.URL.RequestURI(), nil)
	out.Header = r.Header.Clone()
	out.Host = r.Host
	resp, err := http.DefaultTransport.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

func (p *recordingProxy) seen() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.targets...)
}

// TestFetchGoesThroughProxy launches the plugin as its own process with
// HTTP_PROXY and HTTPS_PROXY pointing at a local proxy, and fetches names
// that do not resolve anywhere: only the proxy can have answered them.
func TestFetchGoesThroughProxy(t *testing.T) {
	t.Parallel()
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, "<h1>%s</h1><p>via %s</p>", r.Host, map[bool]string{true: "tls", false: "plain"}[r.TLS != nil])
	})
	tlsSrv := httptest.NewTLSServer(handler)
	t.Cleanup(tlsSrv.Close)
	plainSrv := httptest.NewServer(handler)
	t.Cleanup(plainSrv.Close)
	proxy := &recordingProxy{tlsBackend: tlsSrv.Listener.Addr().String(), plainBackend: plainSrv.Listener.Addr().String()}
	proxySrv := httptest.NewServer(proxy)
	t.Cleanup(proxySrv.Close)

	// httptest's certificate names example.com; trusting it through
	// SSL_CERT_FILE is how the sandbox injects its CA as well.
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	pemData := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsSrv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemData, 0o644); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	l, err := plugin.Launch(context.Background(), plugin.LaunchOptions{Path: exe, Env: []string{
		helperEnv + "=1",
		"HTTP_PROXY=" + proxySrv.URL,
		"HTTPS_PROXY=" + proxySrv.URL,
		"SSL_CERT_FILE=" + caFile,
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Kill)
	if ds, err := l.Configure(context.Background(), plugin.ConfigureOptions{Config: json.RawMessage(`{}`)}); err != nil || len(ds) > 0 {
		t.Fatalf("configure: %v %+v", err, ds)
	}
	call := func(u string) *tools.CallResult {
		res, err := l.Tools().CallTool(context.Background(), &tools.CallRequest{Name: "fetch_url", Arguments: json.RawMessage(`{"url":"` + u + `"}`)})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}

	if res := call("https://example.com/secure"); res.IsError || !strings.Contains(res.Content[0].Text, "# example.com\n\nvia tls") {
		t.Errorf("https through CONNECT: %+v", res.Content)
	}
	if res := call("http://plain.example/page"); res.IsError || !strings.Contains(res.Content[0].Text, "# plain.example\n\nvia plain") {
		t.Errorf("http through the proxy: %+v", res.Content)
	}
	if res := call("https://denied.example/"); !res.IsError || !strings.Contains(res.Content[0].Text, "egress proxy refused") {
		t.Errorf("CONNECT refused by the proxy: %+v", res.Content)
	}
	got := strings.Join(proxy.seen(), ",")
	for _, want := range []string{"CONNECT example.com:443", "GET plain.example", "CONNECT denied.example:443"} {
		if !strings.Contains(got, want) {
			t.Errorf("proxy saw %s; missing %s", got, want)
		}
	}
}
