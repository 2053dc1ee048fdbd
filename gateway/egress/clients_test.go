package egress

import (
	"context"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/cgi"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/policy"
)

// Real clients through the proxy: curl, git, Go's net/http and Node. Each
// trusts the sandbox CA only through the documented environment variables
// or a bundle file, as a sandboxed agent would.

// clientEnv is a proxy with three upstreams: a TLS pass-through host, an
// inspected host and a plain HTTP host.
type clientEnv struct {
	*env
	addr                          string
	passPort, inspPort, plainPort int
	bundle                        string // system roots + sandbox CA + upstream test root
}

func newClientEnv(t *testing.T) *clientEnv {
	t.Helper()
	_, passPort := tlsUpstream(t, echoHandler, "pass.example")
	_, inspPort := tlsUpstream(t, echoHandler, "insp.example")
	_, plainPort := plainUpstream(t, echoHandler)
	e := newEnv(t, map[string]string{"pass.example": "127.0.0.1", "insp.example": "127.0.0.1", "plain.example": "127.0.0.1"})
	insp := ep("insp.example", inspPort)
	insp.Inspect = true
	insp.Allow = []policy.HTTPRule{{Methods: []string{"GET", "HEAD"}, Paths: []string{"/ok/**"}}}
	addr := e.serve(t, "sb", pol(1, policy.UnknownDeny, ep("pass.example", passPort), insp, ep("plain.example", plainPort)))
	ce := &clientEnv{env: e, addr: addr, passPort: passPort, inspPort: inspPort, plainPort: plainPort}
	ce.bundle = writeBundle(t, e.p, "sb")
	return ce
}

// writeBundle writes the sandbox trust bundle plus the test upstream root
// (standing in for a public CA) to a file.
func writeBundle(t *testing.T, p *Proxy, sandboxID string) string {
	t.Helper()
	b, err := p.TrustBundle(sandboxID)
	if err != nil {
		ca, cerr := p.CA(sandboxID)
		if cerr != nil {
			t.Fatal(cerr)
		}
		b = ca.CertPEM()
	}
	path := filepath.Join(t.TempDir(), "nemoclave-ca.pem")
	if err := os.WriteFile(path, Bundle(b, upstreamPKI(t).pem), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func need(t *testing.T, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		t.Skipf("%s is not installed (apt-get install -y %s); this client test cannot run", tool, tool)
	}
	return p
}

// run executes a client with the trust variables set and a clean HOME.
func (ce *clientEnv) run(t *testing.T, dir string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH"), "GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1"},
		TrustEnv(ce.bundle)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestProxy_Curl(t *testing.T) {
	t.Parallel()
	curl := need(t, "curl")
	ce := newClientEnv(t)
	proxy := "http://" + ce.addr
	cases := []struct {
		url, want string
		fail      bool
	}{
		{"https://pass.example:" + strconv.Itoa(ce.passPort) + "/hello?x=1", "GET /hello?x=1", false},
		{"https://insp.example:" + strconv.Itoa(ce.inspPort) + "/ok/a//b/../c", "GET /ok/a/c", false},
		{"https://insp.example:" + strconv.Itoa(ce.inspPort) + "/admin", "matches no allow rule", false},
		{"http://plain.example:" + strconv.Itoa(ce.plainPort) + "/plain", "GET /plain", false},
		{"https://evil.example:443/", "403", true},
	}
	for _, c := range cases {
		out, err := ce.run(t, "", curl, "-sS", "--path-as-is", "--proxy", proxy, "--max-time", "30", c.url)
		if (err != nil) != c.fail || !strings.Contains(out, c.want) {
			t.Errorf("curl %s: err %v, output %q, want %q", c.url, err, out, c.want)
		}
	}
	out, _ := ce.run(t, "", curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", "--proxy", proxy, "https://insp.example:"+strconv.Itoa(ce.inspPort)+"/admin")
	if out != "403" {
		t.Errorf("inspected deny status %q, want 403", out)
	}
}

func TestProxy_GitSmartHTTP(t *testing.T) {
	t.Parallel()
	git := need(t, "git")
	backend := "/usr/lib/git-core/git-http-backend"
	if out, err := exec.Command(git, "--exec-path").Output(); err == nil {
		backend = filepath.Join(strings.TrimSpace(string(out)), "git-http-backend")
	}
	if _, err := os.Stat(backend); err != nil {
		t.Skipf("git-http-backend not found at %s", backend)
	}
	root := t.TempDir()
	src := filepath.Join(root, "src")
	for _, args := range [][]string{
		{"init", "-q", "--bare", "-b", "main", filepath.Join(root, "repo.git")},
		{"init", "-q", "-b", "main", src},
		{"-C", src, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "--allow-empty", "-m", "first"},
		{"-C", src, "push", "-q", filepath.Join(root, "repo.git"), "main"},
		{"-C", filepath.Join(root, "repo.git"), "config", "http.receivepack", "true"},
	} {
		if out, err := exec.Command(git, args...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	os.WriteFile(filepath.Join(src, "README"), []byte("hello through the gateway\n"), 0o644)
	exec.Command(git, "-C", src, "add", "README").Run()
	if out, err := exec.Command(git, "-C", src, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "-m", "readme").CombinedOutput(); err != nil {
		t.Fatalf("commit: %v %s", err, out)
	}
	exec.Command(git, "-C", src, "push", "-q", filepath.Join(root, "repo.git"), "main").Run()

	h := &cgi.Handler{Path: backend, Root: "/", Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"}}
	_, port := tlsUpstream(t, h, "git.example")
	e := newEnv(t, map[string]string{"git.example": "127.0.0.1"})
	gitEP := ep("git.example", port)
	gitEP.Inspect = true
	gitEP.Allow = []policy.HTTPRule{
		{Methods: []string{"GET"}, Paths: []string{"/*.git/info/refs"}, Query: map[string][]string{"service": {"git-upload-pack"}}},
		{Methods: []string{"POST"}, Paths: []string{"/*.git/git-upload-pack"}},
	}
	gitEP.Deny = []policy.HTTPRule{{Paths: []string{"/**/git-receive-pack"}}}
	addr := e.serve(t, "sb", pol(1, policy.UnknownDeny, gitEP))
	ce := &clientEnv{env: e, addr: addr, bundle: writeBundle(t, e.p, "sb")}

	repoURL := "https://git.example:" + strconv.Itoa(port) + "/repo.git"
	dst := filepath.Join(root, "clone")
	out, err := ce.run(t, root, git, "-c", "http.proxy=http://"+addr, "clone", "-q", repoURL, dst)
	if err != nil {
		t.Fatalf("git clone through the proxy: %v\n%s", err, out)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "README")); err != nil || !strings.Contains(string(b), "through the gateway") {
		t.Fatalf("cloned README: %q %v", b, err)
	}
	// Push is refused by the policy (not by the backend, which allows it).
	os.WriteFile(filepath.Join(dst, "x"), []byte("x"), 0o644)
	exec.Command(git, "-C", dst, "add", "x").Run()
	exec.Command(git, "-C", dst, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "-m", "x").Run()
	out, err = ce.run(t, dst, git, "-c", "http.proxy=http://"+addr, "push", "-q", "origin", "main")
	if err == nil {
		t.Fatalf("git push through a read-only policy succeeded:\n%s", out)
	}
	ev := e.waitEvent(t, "push refusal", func(ev Event) bool {
		return ev.Kind == "inspected" && ev.Decision == "deny" && strings.Contains(ev.Reason, "git-receive-pack") ||
			ev.Kind == "inspected" && ev.Decision == "deny" && ev.Path == "/repo.git/info/refs"
	})
	if ev.Status != http.StatusForbidden {
		t.Fatalf("push refusal %+v", ev)
	}
}

func TestProxy_GoHTTPClient(t *testing.T) {
	t.Parallel()
	ce := newClientEnv(t)
	pemBytes, err := os.ReadFile(ce.bundle)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pemBytes)
	proxyURL, _ := url.Parse("http://" + ce.addr)
	tr := &http.Transport{Proxy: http.ProxyURL(proxyURL), ForceAttemptHTTP2: true}
	tr.TLSClientConfig = tlsConfigWithRoots(roots)
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	get := func(u string) (int, string, error) {
		resp, err := client.Get(u)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	for i := 0; i < 3; i++ { // keep-alive reuse of the inspected tunnel
		st, b, err := get("https://insp.example:" + strconv.Itoa(ce.inspPort) + "/ok/" + strconv.Itoa(i))
		if err != nil || st != 200 || b != "GET /ok/"+strconv.Itoa(i) {
			t.Fatalf("inspected GET %d: %d %q %v", i, st, b, err)
		}
	}
	if st, _, err := get("https://insp.example:" + strconv.Itoa(ce.inspPort) + "/admin"); err != nil || st != 403 {
		t.Fatalf("inspected deny: %d %v", st, err)
	}
	if st, b, err := get("https://pass.example:" + strconv.Itoa(ce.passPort) + "/h2"); err != nil || st != 200 || b != "GET /h2" {
		t.Fatalf("pass-through (HTTP/2 inside the tunnel): %d %q %v", st, b, err)
	}
	if st, b, err := get("http://plain.example:" + strconv.Itoa(ce.plainPort) + "/p?q=1"); err != nil || st != 200 || b != "GET /p?q=1" {
		t.Fatalf("plain: %d %q %v", st, b, err)
	}
	if _, _, err := get("https://evil.example/"); err == nil || !strings.Contains(err.Error(), "Forbidden") {
		t.Fatalf("denied host: %v", err)
	}
	// Uploads through an inspected tunnel are judged too (POST not allowed).
	resp, err := client.Post("https://insp.example:"+strconv.Itoa(ce.inspPort)+"/ok/up", "text/plain", strings.NewReader(strings.Repeat("x", 1<<16)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("POST on a GET-only rule: %d", resp.StatusCode)
	}
}

const nodeClient = `
const http = require('http'), https = require('https'), tls = require('tls');
const [proxyHost, proxyPort] = process.env.PROXY.split(':');
const target = process.argv[2], path = process.argv[3];
const req = http.request({host: proxyHost, port: +proxyPort, method: 'CONNECT', path: target, headers: {host: target}});
req.on('connect', (res, socket) => {
  if (res.statusCode !== 200) { console.log('CONNECT ' + res.statusCode); socket.destroy(); return; }
  const host = target.slice(0, target.lastIndexOf(':')), port = +target.slice(target.lastIndexOf(':') + 1);
  const r = https.request({host, port, path, method: "GET",
      createConnection: () => tls.connect({socket, servername: host})}, (resp) => {
    let body = '';
    resp.on('data', d => body += d);
    resp.on('end', () => { console.log('STATUS ' + resp.statusCode + ' ' + body); socket.destroy(); });
  });
  r.on('error', e => { console.log('ERROR ' + e.message); process.exit(1); });
  r.end();
});
req.on('error', e => { console.log('ERROR ' + e.message); process.exit(1); });
req.end();
`

func TestProxy_NodeHTTPS(t *testing.T) {
	t.Parallel()
	node := need(t, "node")
	ce := newClientEnv(t)
	script := filepath.Join(t.TempDir(), "client.js")
	if err := os.WriteFile(script, []byte(nodeClient), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		"insp.example:" + strconv.Itoa(ce.inspPort) + " /ok/node": "STATUS 200 GET /ok/node",
		"insp.example:" + strconv.Itoa(ce.inspPort) + " /admin":   "STATUS 403 ",
		"pass.example:" + strconv.Itoa(ce.passPort) + " /p":       "STATUS 200 GET /p",
		"evil.example:443 /": "CONNECT 403",
	}
	for args, want := range cases {
		a := strings.Fields(args)
		out, err := ce.runWith(t, []string{"PROXY=" + ce.addr}, node, script, a[0], a[1])
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("node %s: %v %q, want %q", args, err, out, want)
		}
	}
}

func (ce *clientEnv) runWith(t *testing.T, extra []string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(append([]string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}, TrustEnv(ce.bundle)...), extra...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
