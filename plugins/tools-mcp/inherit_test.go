package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	seccomp "github.com/elastic/go-seccomp-bpf"

	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/tools"
)

// confinedPluginEnv makes the test binary confine itself the way the
// sandbox confines a plugin (no_new_privs and a seccomp filter, here one
// that refuses mkdirat with EPERM so its effect is visible) and then serve
// the plugin.
const confinedPluginEnv = "NEMOCLAVE_TOOLS_MCP_TEST_CONFINED_PLUGIN"

func confineAndServe() {
	err := seccomp.LoadFilter(seccomp.Filter{
		NoNewPrivs: true,
		Flag:       seccomp.FilterFlagTSync,
		Policy: seccomp.Policy{
			DefaultAction: seccomp.ActionAllow,
			Syscalls:      []seccomp.SyscallGroup{{Names: []string{"mkdirat"}, Action: seccomp.ActionErrno}},
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "confine the test plugin:", err)
		os.Exit(1)
	}
	main()
}

// confinementReport is what the test server's confinement tool answers.
func confinementReport() string {
	var lines []string
	if f, err := os.Open("/proc/self/status"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "NoNewPrivs:") || strings.HasPrefix(sc.Text(), "Seccomp:") {
				lines = append(lines, sc.Text())
			}
		}
		f.Close()
	}
	if dir := os.Getenv("MCP_TEST_MKDIR"); dir != "" {
		lines = append(lines, fmt.Sprintf("mkdir: %v", os.Mkdir(dir, 0o755)))
	}
	if u := os.Getenv("MCP_TEST_FETCH"); u != "" {
		resp, err := http.Get(u)
		if err != nil {
			lines = append(lines, fmt.Sprintf("fetch: %v", err))
		} else {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			lines = append(lines, fmt.Sprintf("fetch: %d %s", resp.StatusCode, body))
		}
	}
	if file := os.Getenv("MCP_TEST_READ"); file != "" {
		data, err := os.ReadFile(file)
		lines = append(lines, fmt.Sprintf("read: %q %v", data, err))
	}
	return strings.Join(lines, "\n")
}

// TestInheritRunsServerInsidePluginSandbox launches the plugin as its own,
// confined process and asks for sandbox = "inherit": the server starts,
// and it is bound by the plugin's restrictions.
func TestInheritRunsServerInsidePluginSandbox(t *testing.T) {
	t.Parallel()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	l, err := plugin.Launch(context.Background(), plugin.LaunchOptions{Path: exe, Env: []string{confinedPluginEnv + "=1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Kill)
	target := filepath.Join(t.TempDir(), "made-by-server")
	cmd, _ := json.Marshal([]string{exe})
	cfg := `{"command":` + string(cmd) + `,"sandbox":"inherit","env":{"` + serverEnv + `":"1","MCP_TEST_MKDIR":"` + target + `"}}`
	if ds, err := l.Configure(context.Background(), plugin.ConfigureOptions{Config: json.RawMessage(cfg)}); err != nil || len(ds) > 0 {
		t.Fatalf("configure: %v %+v", err, ds)
	}
	res, err := l.Tools().CallTool(context.Background(), &tools.CallRequest{Name: "confinement", Arguments: json.RawMessage(`{}`)})
	if err != nil {
		t.Fatalf("inherit in a confined plugin should start the server: %v", err)
	}
	report := res.Content[0].Text
	for _, want := range []string{"NoNewPrivs:\t1", "Seccomp:\t2", "mkdir: mkdir " + target + ": operation not permitted"} {
		if !strings.Contains(report, want) {
			t.Errorf("server report lacks %q:\n%s", want, report)
		}
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Errorf("the server escaped the plugin's seccomp filter: %s exists", target)
	}
}
