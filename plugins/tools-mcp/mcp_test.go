package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/sdktest"
	"github.com/nemoclave/nemoclave/sdk/status"
	"github.com/nemoclave/nemoclave/sdk/tools"
)

// stdioConfig runs this test binary as the stdio test server.
func stdioConfig(t *testing.T, extra string) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal([]string{exe})
	return `{"command":` + string(b) + `,"sandbox":"none","env":{"` + serverEnv + `":"1","MCP_TEST_VAR":"from-config"}` + extra + `}`
}

func connect(t *testing.T, cfg string) tools.Provider {
	t.Helper()
	mp := newPlugin()
	// Registered before InProcess so it runs after the client is closed:
	// the plugin process would exit there, taking its server with it.
	t.Cleanup(func() {
		if up, err := mp.upstream(); err == nil {
			up.close()
		}
	})
	c := plugin.InProcess(t, mp)
	if ds, err := c.Configure(context.Background(), plugin.ConfigureOptions{Config: json.RawMessage(cfg)}); err != nil || len(ds) > 0 {
		t.Fatalf("configure: %v %+v", err, ds)
	}
	return c.Tools()
}

func names(ts []tools.Tool) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Name)
	}
	slices.Sort(out)
	return out
}

func call(t *testing.T, p tools.Provider, name, args string) *tools.CallResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := p.CallTool(ctx, &tools.CallRequest{Name: name, Arguments: json.RawMessage(args)})
	if err != nil {
		t.Fatalf("%s(%s): %v", name, args, err)
	}
	return res
}

// exercise checks list and call against the test server, however it is
// reached.
func exercise(t *testing.T, p tools.Provider, prefix string) {
	t.Helper()
	ctx := context.Background()
	ts, err := p.ListTools(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{prefix + "add", prefix + "confinement", prefix + "crash", prefix + "env", prefix + "fail", prefix + "grow"}
	if got := names(ts); !slices.Equal(got, want) {
		t.Fatalf("tools = %v, want %v", got, want)
	}
	for _, tl := range ts {
		if tl.Name == prefix+"add" {
			if !tl.ReadOnly || tl.Destructive || !strings.Contains(string(tl.InputSchema), `"a"`) {
				t.Errorf("add converted badly: %+v %s", tl, tl.InputSchema)
			}
		}
	}
	res := call(t, p, prefix+"add", `{"a":2,"b":40}`)
	if res.IsError || res.Content[0].Text != "42" || string(res.Structured) != `{"sum":42}` {
		t.Errorf("add = %+v structured %s", res, res.Structured)
	}
	if res := call(t, p, prefix+"fail", `{}`); !res.IsError || res.Content[0].Text != "it failed, as asked" {
		t.Errorf("fail = %+v", res)
	}
	if res := call(t, p, prefix+"add", `{"a":"two"}`); !res.IsError {
		t.Errorf("bad arguments should be a tool error the model sees: %+v", res)
	}
	_, err = p.CallTool(ctx, &tools.CallRequest{Name: prefix + "nope"})
	if status.CodeOf(err) != status.NotFound {
		t.Errorf("unknown tool: %v, want NotFound", err)
	}
}

func TestStdioServer(t *testing.T) {
	t.Parallel()
	p := connect(t, stdioConfig(t, `,"tool_prefix":"t_"`))
	exercise(t, p, "t_")
	if res := call(t, p, "t_env", `{}`); res.Content[0].Text != "from-config" {
		t.Errorf("env not passed to the server: %+v", res)
	}
	_, err := p.CallTool(context.Background(), &tools.CallRequest{Name: "add"})
	if status.CodeOf(err) != status.NotFound {
		t.Errorf("unprefixed name: %v, want NotFound", err)
	}
}

func TestHTTPServer(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var auth []string
	h := httpServer()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auth = append(auth, r.Header.Get("Authorization"))
		mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p := connect(t, `{"url":"`+srv.URL+`/mcp","bearer_token":"t0k"}`)
	exercise(t, p, "")
	mu.Lock()
	defer mu.Unlock()
	if len(auth) == 0 || slices.ContainsFunc(auth, func(a string) bool { return a != "Bearer t0k" }) {
		t.Errorf("configured header not sent on every request: %q", auth)
	}
}

// TestToolListChangePropagates watches over gRPC, as the host does, and
// makes the server add a tool: the new list must arrive without polling.
func TestToolListChangePropagates(t *testing.T) {
	t.Parallel()
	p := connect(t, stdioConfig(t, ""))
	w, ok := p.(tools.Watcher)
	if !ok {
		t.Fatal("the gRPC client does not implement tools.Watcher")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lists := make(chan []string, 10)
	done := make(chan error, 1)
	go func() { done <- w.WatchTools(ctx, func(ts []tools.Tool) { lists <- names(ts) }) }()

	next := func() []string {
		select {
		case l := <-lists:
			return l
		case err := <-done:
			t.Fatalf("watch ended: %v", err)
		case <-ctx.Done():
			t.Fatal("no tool list arrived")
		}
		return nil
	}
	if first := next(); slices.Contains(first, "extra_1") || !slices.Contains(first, "grow") {
		t.Fatalf("first list = %v", first)
	}
	if res := call(t, p, "grow", `{}`); res.Content[0].Text != "added extra_1" {
		t.Fatalf("grow = %+v", res)
	}
	if l := next(); !slices.Contains(l, "extra_1") {
		t.Fatalf("after grow: %v", l)
	}
	if res := call(t, p, "extra_1", `{}`); res.Content[0].Text != "extra_1" {
		t.Errorf("new tool call = %+v", res)
	}
	cancel()
	if err := <-done; err == nil {
		t.Error("WatchTools returned nil after cancel")
	}
}

// TestServerCrashRestarts kills the stdio server mid-session: the call in
// flight fails as a plugin error and the next call starts a new server.
func TestServerCrashRestarts(t *testing.T) {
	t.Parallel()
	p := connect(t, stdioConfig(t, ""))
	call(t, p, "add", `{"a":1,"b":1}`)
	_, err := p.CallTool(context.Background(), &tools.CallRequest{Name: "crash", Arguments: json.RawMessage(`{}`)})
	if err == nil {
		t.Fatal("a call whose server died returned no error")
	}
	deadline := time.Now().Add(time.Minute)
	for {
		res, err := p.CallTool(context.Background(), &tools.CallRequest{Name: "add", Arguments: json.RawMessage(`{"a":1,"b":2}`)})
		if err == nil && res.Content[0].Text == "3" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not restarted: %v %+v", err, res)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestSandboxChoice: a stdio server is sandboxed unless the config says
// "none", never runs unconfined when its sandbox cannot be made, and
// "inherit" refuses to run in a plugin that is not confined.
func TestSandboxChoice(t *testing.T) {
	t.Parallel()
	exe, _ := os.Executable()
	cmd, _ := json.Marshal([]string{exe})
	for _, tc := range []struct{ cfg, path, want string }{
		{`{"command":` + string(cmd) + `,"sandbox":"maybe"}`, "sandbox", `"inherit" or "none"`},
		{`{"url":"http://x/mcp","sandbox":"none"}`, "sandbox", "applies to a stdio server"},
		{`{}`, "", "set command"},
		{`{"command":["x"],"sandbox":"none","url":"http://x/"}`, "url", "not both"},
		{`{"url":"ftp://x/"}`, "url", "http or https"},
		{`{"url":"http://x/","env":{"A":"b"}}`, "env", "stdio"},
		{`{"command":["x"],"sandbox":"none","headers":{"A":"b"}}`, "headers", "url"},
		{`{"command":["x"],"sandbox":"none","bearer_token":"t"}`, "headers", "bearer_token apply to url"},
		{`{"url":"http://x/","bearer_token":"t","headers":{"Authorization":"x"}}`, "headers.Authorization", "not both"},
		{`{"url":"http://x/","timeout":"0s"}`, "timeout", "Go duration"},
		{`{"command":["x"],"sandbox":"none","read_only":["/opt"]}`, "sandbox", `only to sandbox = "local"`},
		{`{"command":["x"],"sandbox":"local","read_only":["opt"]}`, "read_only", "absolute"},
		{`{"command":["x"],"sandbox":"local","dir":"/x"}`, "dir", "does not apply"},
		{`{"command":["x"],"sandbox":"local","memory_mb":1}`, "memory_mb", "at least 16"},
	} {
		ds := newPlugin().ValidateConfig(context.Background(), json.RawMessage(tc.cfg))
		if len(ds) != 1 || strings.Join(ds[0].Path, ".") != tc.path || !strings.Contains(ds[0].Summary, tc.want) {
			t.Errorf("%s: diags %+v, want one at %q containing %q", tc.cfg, ds, tc.path, tc.want)
		}
	}

	// Unset means "local": valid, and the server runs only in a sandbox.
	// Here none can be made (no state directory was given), so the server
	// must not start at all.
	if ds := newPlugin().ValidateConfig(context.Background(), json.RawMessage(`{"command":`+string(cmd)+`}`)); len(ds) != 0 {
		t.Errorf("unset sandbox: %+v", ds)
	}
	if c, _ := parseConfig(json.RawMessage(`{"command":["x"]}`)); c.Sandbox != sandboxLocal {
		t.Errorf("unset sandbox means %q, want local", c.Sandbox)
	}
	marker := filepath.Join(t.TempDir(), "ran")
	p := connect(t, `{"command":["/bin/sh","-c","touch `+marker+`"]}`)
	if _, err := p.ListTools(context.Background()); status.CodeOf(err) != status.Unavailable || !strings.Contains(err.Error(), "local sandbox") {
		t.Errorf("default sandbox that cannot be made: %v", err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the server ran although its sandbox could not be made")
	}

	// This test process is not confined, so "inherit" must not start the
	// server: the call fails before any process runs.
	p = connect(t, `{"command":`+string(cmd)+`,"sandbox":"inherit","env":{"`+serverEnv+`":"1"}}`)
	_, err := p.ListTools(context.Background())
	if status.CodeOf(err) != status.PermissionDenied || !strings.Contains(err.Error(), "not running sandboxed") {
		t.Errorf("inherit in an unconfined plugin: %v", err)
	}
}

func TestInheritedSandboxCheck(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, strings.ReplaceAll(s, "\n", "_"))
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	old := procStatus
	t.Cleanup(func() { procStatus = old })
	for _, tc := range []struct {
		status string
		ok     bool
	}{
		{"Name:\tx\nNoNewPrivs:\t1\nSeccomp:\t2\n", true},
		{"NoNewPrivs:\t0\nSeccomp:\t2\n", false},
		{"NoNewPrivs:\t1\nSeccomp:\t0\n", false},
		{"Name:\tx\n", false},
	} {
		procStatus = write(tc.status)
		if err := checkInheritedSandbox(); (err == nil) != tc.ok {
			t.Errorf("%q: err = %v, want ok=%v", tc.status, err, tc.ok)
		}
	}
}

func TestConformance(t *testing.T) {
	t.Parallel()
	cfg := sdktest.WithConfig(stdioConfig(t, ""))
	sdktest.Common(t, newPlugin(), cfg)
	sdktest.Tools(t, newPlugin(), cfg,
		sdktest.WithToolSample("add", `{"a":1,"b":2}`),
		// grow is left out: it changes the list the suite compares against.
		sdktest.WithToolSample("env", `{}`))
}
