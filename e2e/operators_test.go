package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/internal/oidctest"
)

// startRemoteDaemon runs `nemoclave daemon --listen 127.0.0.1:0` for e and
// returns the address and certificate fingerprint it printed.
func startRemoteDaemon(t *testing.T, e *env) (addr, fingerprint string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(e.bin, "nemoclave"), "daemon", "--listen", "127.0.0.1:0")
	cmd.Env = e.vars
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	t.Cleanup(func() {
		// Stopped through its socket, as an owner would; killed only when
		// it does not answer.
		e.run(context.Background(), "daemon", "stop")
		select {
		case <-exited:
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	re := regexp.MustCompile(`remote API on (\S+) with a self-signed certificate, fingerprint (sha256:[0-9a-f]+)`)
	found := make(chan [2]string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil && !sent {
				found <- [2]string{m[1], m[2]}
				sent = true
			}
		}
		_ = cmd.Wait()
		close(exited)
	}()
	select {
	case m := <-found:
		return m[0], m[1]
	case <-exited:
		t.Fatalf("the daemon exited before serving remotely:\n%s", e.daemonLog())
	case <-time.After(2 * time.Minute):
		t.Fatal("the daemon did not print its remote address within 2 minutes")
	}
	return "", ""
}

// startOIDCDaemon starts a stand-in OIDC issuer and a daemon serving its API
// on TLS, whose access.hcl grants the group "viewers" the viewer role and
// "ops" the operator role; it returns the issuer, the daemon's env, its
// https URL and its certificate's fingerprint.
func startOIDCDaemon(t *testing.T) (is *oidctest.Issuer, srv *env, server, fp string) {
	t.Helper()
	is, err := oidctest.Start("nemoclave-cli")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(is.Close)
	srv = newEnv(t)
	access := fmt.Sprintf(`oidc {
  issuer        = %q
  audience      = "nemoclave-cli"
  subject_claim = "email"
}

grant "viewers" {
  value = "viewers"
  role  = "viewer"
}

grant "operators" {
  value = "ops"
  role  = "operator"
}
`, is.URL)
	if err := os.WriteFile(filepath.Join(srv.home, "access.hcl"), []byte(access), 0o600); err != nil {
		t.Fatal(err)
	}
	addr, fp := startRemoteDaemon(t, srv)
	return is, srv, "https://" + addr, fp
}

// TestOIDC_RemoteCLISession drives the real binary: a daemon serving its
// API on TLS with a self-signed certificate, a second home that logs in
// through the device-code flow of a stand-in issuer, and every role's
// commands over the wire, with the control audit naming each caller.
func TestOIDC_RemoteCLISession(t *testing.T) {
	is, srv, server, fp := startOIDCDaemon(t)

	cli := newEnv(t)
	ctx := context.Background()

	// An unpinned self-signed daemon is refused, with its fingerprint.
	r := cli.run(ctx, "login", "--server", server)
	if r.code == 0 || !strings.Contains(r.stderr, fp) {
		t.Fatalf("unpinned login: exit %d\n%s", r.code, r.stderr)
	}

	// A viewer signs in with the device code and reads remotely.
	is.AutoApprove(oidctest.Identity{Subject: "u-vera", Claims: map[string]any{"email": "vera@example.com", "groups": []string{"viewers"}}})
	r = cli.run(ctx, "login", "--server", server, "--fingerprint", fp)
	if r.code != 0 || !strings.Contains(r.stdout, "as oidc:vera@example.com (viewer)") || !strings.Contains(r.stderr, "enter the code") {
		t.Fatalf("viewer login: exit %d\nstdout %s\nstderr %s\ndaemon log:\n%s", r.code, r.stdout, r.stderr, srv.daemonLog())
	}
	if is.Polls() < 2 {
		t.Errorf("the CLI polled the token endpoint %d times; the device flow answers authorization_pending first", is.Polls())
	}
	st, err := os.Stat(filepath.Join(cli.home, "login.json"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("login.json: %v %v", st, err)
	}
	status := cli.must("daemon", "status", "-o", "json")
	var ds struct{ Home string }
	if err := json.Unmarshal([]byte(status), &ds); err != nil || ds.Home != srv.home {
		t.Fatalf("remote daemon status: %s (%v); want the server's home %s", status, err, srv.home)
	}
	if out := cli.must("sandbox", "list", "-o", "json"); !strings.HasPrefix(strings.TrimSpace(out), "[") {
		t.Errorf("remote sandbox list: %q", out)
	}
	cli.must("approvals", "list")
	r = cli.run(ctx, "approvals", "approve", "ap-none")
	if r.code == 0 || !strings.Contains(r.stderr, "oidc:vera@example.com is a viewer; AnswerApproval needs the operator role") {
		t.Errorf("viewer approves: exit %d\n%s", r.code, r.stderr)
	}

	// An operator's answer reaches the runtime (which knows no such id).
	// Its tokens live 29s, inside the CLI's 30s renewal margin, so every
	// command renews the stored token with the refresh token first.
	is.SetTTL(29 * time.Second)
	is.AutoApprove(oidctest.Identity{Subject: "u-otto", Claims: map[string]any{"email": "otto@example.com", "groups": []string{"ops"}}})
	if out := cli.must("login", "--server", server, "--fingerprint", fp); !strings.Contains(out, "(operator)") {
		t.Errorf("operator login: %s", out)
	}
	before, refreshes := readFile(t, filepath.Join(cli.home, "login.json")), is.Refreshes()
	r = cli.run(ctx, "approvals", "approve", "ap-none")
	if r.code == 0 || !strings.Contains(r.stderr, "no pending approval") {
		t.Errorf("operator approves an unknown id: exit %d\n%s", r.code, r.stderr)
	}
	if is.Refreshes() <= refreshes || readFile(t, filepath.Join(cli.home, "login.json")) == before {
		t.Errorf("a token about to expire was not renewed (%d refreshes before, %d after)", refreshes, is.Refreshes())
	}
	// ... but an operator may not stop the daemon.
	r = cli.run(ctx, "daemon", "stop")
	if r.code == 0 || !strings.Contains(r.stderr, "Shutdown needs the admin role") {
		t.Errorf("operator stops the daemon: exit %d\n%s", r.code, r.stderr)
	}

	// Automation: a token from the environment; an expired one is refused.
	expired, err := is.Token("u-otto", "nemoclave-cli", -time.Minute, map[string]any{"groups": []string{"ops"}})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(cli.bin, "nemoclave"), "sandbox", "list")
	cmd.Env = append(append([]string(nil), cli.vars...), "NEMOCLAVE_TOKEN="+expired)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "expired") {
		t.Errorf("expired NEMOCLAVE_TOKEN: %v\n%s", err, out)
	}

	b, err := os.ReadFile(filepath.Join(srv.home, "logs", "control.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	audit := string(b)
	for _, want := range []string{
		`"caller":"oidc:vera@example.com","method":"AnswerApproval","outcome":"denied"`,
		`"caller":"oidc:otto@example.com","method":"AnswerApproval","outcome":"error"`,
		`"caller":"oidc:otto@example.com","method":"Shutdown","outcome":"denied"`,
		`"caller":"unauthenticated","method":"Ping","outcome":"denied"`,
	} {
		if !strings.Contains(audit, want) {
			t.Errorf("control audit lacks %s:\n%s", want, audit)
		}
	}

	// Logged out, the CLI is local again (no daemon runs in its home).
	cli.must("logout")
	if _, err := os.Stat(filepath.Join(cli.home, "login.json")); !os.IsNotExist(err) {
		t.Errorf("logout left login.json: %v", err)
	}
	r = cli.run(ctx, "daemon", "status")
	if r.code == 0 || !strings.Contains(r.stderr, "not running") {
		t.Errorf("status after logout: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
