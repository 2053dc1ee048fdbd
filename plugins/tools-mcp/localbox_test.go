package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
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

// serverOutsideTmp copies the test binary where a local sandbox can see
// it: the sandbox mounts its own /tmp, so the go test build directory is
// invisible inside. Returns the copy's directory.
func serverOutsideTmp(t *testing.T) (dir, exe string) {
	t.Helper()
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Skipf("no user cache directory to hold the test server outside /tmp: %v", err)
	}
	if err := os.MkdirAll(filepath.Join(cache, "nemoclave"), 0o755); err != nil {
		t.Fatal(err)
	}
	dir, err = os.MkdirTemp(filepath.Join(cache, "nemoclave"), "tools-mcp-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	exe = filepath.Join(dir, "mcp-test-server")
	dst, err := os.OpenFile(exe, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, exe
}

// TestLocalSandbox runs the stdio server in a sandbox of its own made by
// the local driver: it must work as an MCP server, be confined
// (no_new_privs, seccomp), see a read-only system and none of the host's
// other files, and the sandbox must go away with the session.
func TestLocalSandbox(t *testing.T) {
	t.Parallel()
	dir, exe := serverOutsideTmp(t)
	secret := filepath.Join(t.TempDir(), "host-secret")
	if err := os.WriteFile(secret, []byte("do-not-leak"), 0o644); err != nil {
		t.Fatal(err)
	}
	stateDir := t.TempDir()
	cmd, _ := json.Marshal([]string{exe})
	ro, _ := json.Marshal([]string{dir})
	cfg := `{"command":` + string(cmd) + `,"sandbox":"local","read_only":` + string(ro) + `,"allow_unlimited":true,` +
		`"env":{"` + serverEnv + `":"1","MCP_TEST_VAR":"in-the-box","MCP_TEST_MKDIR":"/etc/made-by-server","MCP_TEST_READ":"` + secret + `"}}`

	mp := newPlugin()
	c := plugin.InProcess(t, mp)
	if ds, err := c.Configure(context.Background(), plugin.ConfigureOptions{Config: json.RawMessage(cfg), StateDir: stateDir}); err != nil || len(ds) > 0 {
		t.Fatalf("configure: %v %+v", err, ds)
	}
	p := c.Tools()
	res, err := p.CallTool(context.Background(), &tools.CallRequest{Name: "env", Arguments: json.RawMessage(`{}`)})
	if err != nil {
		t.Fatalf("the server did not come up in a local sandbox: %v", err)
	}
	if res.Content[0].Text != "in-the-box" {
		t.Errorf("env in the sandbox: %+v", res)
	}
	exercise(t, p, "")
	report := call(t, p, "confinement", `{}`).Content[0].Text
	for _, want := range []string{"NoNewPrivs:\t1", "Seccomp:\t2", "mkdir: mkdir /etc/made-by-server: ", "read: \"\" open " + secret + ": no such file or directory"} {
		if !strings.Contains(report, want) {
			t.Errorf("server report lacks %q:\n%s", want, report)
		}
	}
	if strings.Contains(report, "do-not-leak") {
		t.Errorf("the sandboxed server read a host file it was not given:\n%s", report)
	}
	if _, err := os.Stat("/etc/made-by-server"); err == nil {
		os.Remove("/etc/made-by-server")
		t.Error("the sandboxed server created a directory in the host's /etc")
	}

	up, err := mp.upstream()
	if err != nil {
		t.Fatal(err)
	}
	up.close()
	boxes, _ := filepath.Glob(filepath.Join(stateDir, "sandboxes", "mcp-*"))
	if len(boxes) != 0 {
		t.Errorf("sandboxes left after the session closed: %v", boxes)
	}
}

// TestLocalSandboxEgressGoesThroughPluginProxy gives the plugin a proxy
// (as the host does) and has the sandboxed server fetch a URL: the
// request must arrive at that proxy, relayed from the listener inside the
// server's network namespace. Not parallel: it sets HTTPS_PROXY for the
// plugin, which reads its own environment.
func TestLocalSandboxEgressGoesThroughPluginProxy(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.String())
		mu.Unlock()
		fmt.Fprint(w, "answered-by-plugin-proxy")
	}))
	t.Cleanup(proxy.Close)
	t.Setenv("HTTP_PROXY", proxy.URL)
	t.Setenv("HTTPS_PROXY", proxy.URL)

	dir, exe := serverOutsideTmp(t)
	cmd, _ := json.Marshal([]string{exe})
	ro, _ := json.Marshal([]string{dir})
	cfg := `{"command":` + string(cmd) + `,"sandbox":"local","read_only":` + string(ro) + `,"allow_unlimited":true,` +
		`"env":{"` + serverEnv + `":"1","MCP_TEST_FETCH":"http://upstream.example/data"}}`
	p := connectWithState(t, cfg, t.TempDir())
	report := call(t, p, "confinement", `{}`).Content[0].Text
	if !strings.Contains(report, "fetch: 200 answered-by-plugin-proxy") {
		t.Errorf("the sandboxed server's request did not go through the plugin's proxy:\n%s", report)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || seen[0] != "GET http://upstream.example/data" {
		t.Errorf("proxy saw %q", seen)
	}
}

// connectWithState is connect with a state directory, which sandbox =
// "local" needs for the driver's state.
func connectWithState(t *testing.T, cfg, stateDir string) tools.Provider {
	t.Helper()
	mp := newPlugin()
	t.Cleanup(func() {
		if up, err := mp.upstream(); err == nil {
			up.close()
		}
	})
	c := plugin.InProcess(t, mp)
	if ds, err := c.Configure(context.Background(), plugin.ConfigureOptions{Config: json.RawMessage(cfg), StateDir: stateDir}); err != nil || len(ds) > 0 {
		t.Fatalf("configure: %v %+v", err, ds)
	}
	return c.Tools()
}
