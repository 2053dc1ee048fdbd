package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// npmServers installs the real MCP servers from npm once per test binary
// with scripts/npm-test-deps.sh and returns the directory holding their
// node_modules/.bin. Tests skip only when npm itself is missing.
var npmServers = sync.OnceValues(func() (string, error) {
	if _, err := exec.LookPath("npm"); err != nil {
		return "", errNoNPM
	}
	out, err := exec.Command("bash", "../../scripts/npm-test-deps.sh").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", errors.New(string(ee.Stderr))
		}
		return "", err
	}
	return filepath.Join(strings.TrimSpace(string(out)), "node_modules", ".bin"), nil
})

var errNoNPM = errors.New("npm is not installed")

func npmBin(t *testing.T, name string) string {
	t.Helper()
	dir, err := npmServers()
	if errors.Is(err, errNoNPM) {
		t.Skip("npm is not installed: cannot install the real MCP servers from npm (run scripts/npm-test-deps.sh where npm exists)")
	}
	if err != nil {
		t.Fatalf("scripts/npm-test-deps.sh: %v", err)
	}
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s not installed by scripts/npm-test-deps.sh: %v", name, err)
	}
	return p
}

func TestNPMServerFilesystem(t *testing.T) {
	t.Parallel()
	bin := npmBin(t, "mcp-server-filesystem")
	dir := t.TempDir()
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("s3cret"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd, _ := json.Marshal([]string{bin})
	args, _ := json.Marshal([]string{dir})
	p := connect(t, `{"command":`+string(cmd)+`,"args":`+string(args)+`,"sandbox":"none","tool_prefix":"fs_"}`)
	ts, err := p.ListTools(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"fs_read_text_file", "fs_write_file", "fs_list_directory"} {
		if !slices.Contains(names(ts), want) {
			t.Fatalf("tools %v lack %s", names(ts), want)
		}
	}
	target, _ := json.Marshal(filepath.Join(dir, "hello.txt"))
	if res := call(t, p, "fs_write_file", `{"path":`+string(target)+`,"content":"hi from the agent"}`); res.IsError {
		t.Fatalf("write_file: %+v", res)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "hello.txt")); string(got) != "hi from the agent" {
		t.Fatalf("file holds %q", got)
	}
	if res := call(t, p, "fs_read_text_file", `{"path":`+string(target)+`}`); res.IsError || !strings.Contains(res.Content[0].Text, "hi from the agent") {
		t.Errorf("read_text_file: %+v", res)
	}
	secret, _ := json.Marshal(filepath.Join(outside, "secret"))
	if res := call(t, p, "fs_read_text_file", `{"path":`+string(secret)+`}`); !res.IsError || strings.Contains(res.Content[0].Text, "s3cret") {
		t.Errorf("the server's own access control should refuse paths outside its root: %+v", res)
	}
}

func TestNPMServerEverything(t *testing.T) {
	t.Parallel()
	bin := npmBin(t, "mcp-server-everything")
	cmd, _ := json.Marshal([]string{bin, "stdio"})
	p := connect(t, `{"command":`+string(cmd)+`,"sandbox":"none"}`)
	ts, err := p.ListTools(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"echo", "get-sum", "get-tiny-image"} {
		if !slices.Contains(names(ts), want) {
			t.Fatalf("tools %v lack %s", names(ts), want)
		}
	}
	if res := call(t, p, "echo", `{"message":"ping"}`); res.IsError || res.Content[0].Text != "Echo: ping" {
		t.Errorf("echo: %+v", res)
	}
	if res := call(t, p, "get-sum", `{"a":2,"b":3}`); res.IsError || !strings.Contains(res.Content[0].Text, "is 5") {
		t.Errorf("get-sum: %+v", res)
	}
	res := call(t, p, "get-tiny-image", `{}`)
	var img bool
	for _, c := range res.Content {
		if c.Image != nil && c.Image.MIMEType == "image/png" && len(c.Image.Data) > 0 {
			img = true
		}
	}
	if res.IsError || !img {
		t.Errorf("get-tiny-image returned no PNG: %+v", res)
	}
	if res := call(t, p, "get-sum", `{"a":"x"}`); !res.IsError {
		t.Errorf("invalid arguments should be a tool error: %+v", res)
	}
}

// TestNPMServerFilesystemInLocalSandbox runs the real filesystem server in
// a sandbox of its own, with the host workspace mounted writable at
// /workspace: the agent-facing behaviour is unchanged and the writes land
// in the host directory.
func TestNPMServerFilesystemInLocalSandbox(t *testing.T) {
	t.Parallel()
	bin := npmBin(t, "mcp-server-filesystem")
	cacheDir := filepath.Dir(filepath.Dir(filepath.Dir(bin))) // …/npm
	ws := t.TempDir()
	cmd, _ := json.Marshal([]string{"node", filepath.Join(cacheDir, "node_modules", "@modelcontextprotocol", "server-filesystem", "dist", "index.js"), "/workspace"})
	ro, _ := json.Marshal([]string{cacheDir})
	p := connectWithState(t, `{"command":`+string(cmd)+`,"sandbox":"local","read_only":`+string(ro)+`,"workspace":"`+ws+`","workspace_writable":true,"allow_unlimited":true}`, t.TempDir())
	if res := call(t, p, "write_file", `{"path":"/workspace/from-box.txt","content":"written in the sandbox"}`); res.IsError {
		t.Fatalf("write_file: %+v", res)
	}
	if got, _ := os.ReadFile(filepath.Join(ws, "from-box.txt")); string(got) != "written in the sandbox" {
		t.Errorf("host workspace file holds %q", got)
	}
	if res := call(t, p, "read_text_file", `{"path":"/etc/shadow"}`); !res.IsError {
		t.Errorf("read outside the server's allowed directory: %+v", res)
	}
}

// TestNPMServerEverythingOverHTTP imports server-everything through its
// streamable-HTTP transport: the URL path of the plugin against a server
// not written with the Go SDK.
func TestNPMServerEverythingOverHTTP(t *testing.T) {
	t.Parallel()
	bin := npmBin(t, "mcp-server-everything")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "streamableHttp")
	cmd.Env = append(os.Environ(), fmt.Sprintf("PORT=%d", port))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "listening on port") {
				close(ready)
				break
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		t.Fatal("server-everything did not start listening")
	}
	p := connect(t, fmt.Sprintf(`{"url":"http://127.0.0.1:%d/mcp","tool_prefix":"ev_"}`, port))
	if res := call(t, p, "ev_echo", `{"message":"over http"}`); res.IsError || res.Content[0].Text != "Echo: over http" {
		t.Errorf("echo over HTTP: %+v", res)
	}
	if res := call(t, p, "ev_get-sum", `{"a":20,"b":22}`); res.IsError || !strings.Contains(res.Content[0].Text, "is 42") {
		t.Errorf("get-sum over HTTP: %+v", res)
	}
}
