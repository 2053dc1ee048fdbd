package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The provider key the gateway holds for the keepalive blueprint. It must
// never be visible inside the sandbox.
const providerKey = "sk-e2e-7f3a9c1d5b2e8f40-never-in-the-sandbox"

// TestQuickstartRunsOffline is `make run`: the quickstart blueprint, run
// attached, answers and leaves nothing behind.
func TestQuickstartRunsOffline(t *testing.T) {
	e := newEnv(t)
	dir := filepath.Join(t.TempDir(), "quickstart")
	copyDir(t, filepath.Join(repoRoot(t), "examples", "quickstart"), dir)
	r := e.run(t.Context(), "run", filepath.Join(dir, "blueprint.hcl"))
	if r.code != 0 {
		t.Fatalf("run: exit %d\nstdout:\n%s\nstderr:\n%s\n%s", r.code, r.stdout, r.stderr, e.daemonLog())
	}
	for _, step := range []string{"evaluate blueprint", "launch plugins", "create sandbox", "start agent"} {
		if !strings.Contains(r.stderr, "✓ "+step) {
			t.Errorf("progress lacks %q:\n%s", step, r.stderr)
		}
	}
	if strings.TrimSpace(r.stdout) == "" {
		t.Fatalf("the agent printed no answer; stderr:\n%s", r.stderr)
	}
	if !strings.Contains(r.stdout, "→ list_files") {
		t.Errorf("the agent made no tool call:\n%s", r.stderr)
	}
	list := e.must("sandbox", "list", "-o", "json")
	if strings.Contains(list, `"quickstart"`) {
		t.Fatalf("an attached run left its sandbox behind: %s", list)
	}
}

func TestOperatorCommandsAgainstARunningSandbox(t *testing.T) {
	e := newEnv(t, "E2E_PROVIDER_KEY="+providerKey)
	dir := filepath.Join(t.TempDir(), "keepalive")
	copyDir(t, filepath.Join(repoRoot(t), "e2e", "testdata", "keepalive"), dir)
	cassette := filepath.Join(repoRoot(t), "examples", "quickstart", "cassette.json")
	e.must("run", "-d", filepath.Join(dir, "blueprint.hcl"), "--var", "cassette="+cassette)

	// The agent answers, then its wrapper keeps the sandbox running.
	var logs string
	deadline := time.Now().Add(60 * time.Second)
	for {
		logs = e.must("logs", "e2e", "--tail", "--source", "sandbox")
		if strings.Contains(logs, "→ list_files") && len(strings.TrimSpace(logs)) > len("→ list_files") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer in the sandbox log within 60s:\n%s\n%s", logs, e.daemonLog())
		}
		time.Sleep(200 * time.Millisecond)
	}

	var list []struct {
		Name, State, Agent string
	}
	if err := json.Unmarshal([]byte(e.must("sandbox", "list", "-o", "json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Name != "e2e" || list[0].State != "running" || list[0].Agent != "assistant" {
		t.Fatalf("sandbox list = %+v", list)
	}

	full := e.must("policy", "get", "e2e", "--full")
	for _, want := range []string{"pypi.org", "preset:pypi", "REVISION"} {
		if !strings.Contains(full, want) {
			t.Errorf("policy get --full lacks %q:\n%s", want, full)
		}
	}

	// A tool call went through the gateway's MCP server and was audited.
	audit := e.must("logs", "e2e", "--source", "audit")
	if !strings.Contains(audit, `"kind":"tool_call"`) || !strings.Contains(audit, `"name":"list_files"`) {
		t.Errorf("no audited tool call:\n%s", audit)
	}

	// Egress to a host outside the policy is refused with 403 and audited.
	probe := `p=${HTTPS_PROXY##*:}; p=${p%/}; exec 3<>/dev/tcp/127.0.0.1/$p; ` +
		`printf 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n' >&3; head -n1 <&3`
	got := e.must("sandbox", "exec", "e2e", "--", "/bin/bash", "-c", probe)
	if !strings.Contains(got, "403") {
		t.Errorf("CONNECT to example.com: %q, want 403", got)
	}
	audit = e.must("logs", "e2e", "--source", "audit")
	if !strings.Contains(audit, "example.com") || !strings.Contains(audit, `"deny"`) {
		t.Errorf("the denial is not in the audit log:\n%s", audit)
	}

	// N19: the provider key the gateway holds is nowhere in the sandbox.
	hunt := `env; cat /proc/[0-9]*/environ 2>/dev/null | tr '\0' '\n'; grep -rs . /workspace /tmp 2>/dev/null | head -1000; exit 0`
	if out := e.must("sandbox", "exec", "e2e", "--", "/bin/sh", "-c", hunt); strings.Contains(out, providerKey) || strings.Contains(out, "E2E_PROVIDER_KEY") {
		t.Errorf("the provider key is visible inside the sandbox")
	}

	status := e.must("inference", "status", "--sandbox", "e2e", "-o", "json")
	if !strings.Contains(status, "replay") {
		t.Errorf("inference status = %s", status)
	}

	// Delete: nothing of the sandbox is left; its plugin processes are
	// kept idle for the next run (the daemon's --plugin-idle-ttl, one
	// minute by default) and stop with the daemon.
	var ping struct{ Pid int }
	_ = json.Unmarshal([]byte(e.must("daemon", "status", "-o", "json")), &ping)
	e.must("sandbox", "delete", "e2e")
	deadline = time.Now().Add(time.Minute)
	for {
		var left []string
		for _, p := range processesMentioning(e.home, ping.Pid) {
			if !strings.Contains(p, "/nemoclave-plugin-") {
				left = append(left, p)
			}
		}
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes left after sandbox delete:\n%s", strings.Join(left, "\n"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out := e.must("sandbox", "list", "-o", "json"); strings.Contains(out, `"e2e"`) {
		t.Fatalf("deleted sandbox still listed: %s", out)
	}
	e.must("daemon", "stop")
	if ping.Pid > 0 {
		deadline = time.Now().Add(time.Minute)
		for {
			if _, err := os.Stat("/proc/" + strconv.Itoa(ping.Pid)); err != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the daemon did not exit after `daemon stop`")
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// `daemon stop` returns once the daemon has stopped its plugins, the
	// idle ones too.
	if left := processesMentioning(e.home, ping.Pid); len(left) > 0 {
		t.Fatalf("processes left after daemon stop:\n%s", strings.Join(left, "\n"))
	}
}

// TestDaemonRestartReportsLostSandboxes: a daemon killed with SIGKILL takes
// its sandboxes with it; the next daemon lists them as lost, never forgets
// them, and deletes them cleanly.
func TestDaemonRestartReportsLostSandboxes(t *testing.T) {
	e := newEnv(t, "E2E_PROVIDER_KEY="+providerKey)
	dir := filepath.Join(t.TempDir(), "keepalive")
	copyDir(t, filepath.Join(repoRoot(t), "e2e", "testdata", "keepalive"), dir)
	cassette := filepath.Join(repoRoot(t), "examples", "quickstart", "cassette.json")
	e.must("run", "-d", filepath.Join(dir, "blueprint.hcl"), "--var", "cassette="+cassette)
	var ping struct{ Pid int }
	if err := json.Unmarshal([]byte(e.must("daemon", "status", "-o", "json")), &ping); err != nil || ping.Pid == 0 {
		t.Fatalf("daemon status: %v", err)
	}
	if err := syscall.Kill(ping.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		left := processesMentioning(e.home, 0)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes survived the daemon's SIGKILL:\n%s", strings.Join(left, "\n"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	var list []struct{ Name, State, Reason string }
	if err := json.Unmarshal([]byte(e.must("sandbox", "list", "-o", "json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Name != "e2e" || list[0].State != "lost" {
		t.Fatalf("after a daemon restart: %+v, want e2e lost", list)
	}
	e.must("sandbox", "delete", "e2e")
	if out := e.must("sandbox", "list", "-o", "json"); strings.Contains(out, `"e2e"`) {
		t.Fatalf("lost sandbox not deleted: %s", out)
	}
}
