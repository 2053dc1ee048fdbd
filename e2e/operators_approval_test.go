package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/internal/oidctest"
)

// TestOIDC_RemoteOperatorApprovesRealSandbox: a request from a real
// sandbox to a host outside its policy is held for approval; a remote
// operator, signed in through the stand-in issuer, approves it with the
// CLI; the sandbox's egress audit and the control audit both name that
// operator.
func TestOIDC_RemoteOperatorApprovesRealSandbox(t *testing.T) {
	is, err := oidctest.Start("nemoclave-cli")
	if err != nil {
		t.Fatal(err)
	}
	defer is.Close()
	srv := newEnv(t, "E2E_PROVIDER_KEY="+providerKey)
	access := fmt.Sprintf("oidc {\n  issuer = %q\n  audience = \"nemoclave-cli\"\n  subject_claim = \"email\"\n}\n\ngrant \"ops\" {\n  value = \"ops\"\n  role = \"operator\"\n  sandboxes = [\"e2e\"]\n}\n", is.URL)
	if err := os.WriteFile(filepath.Join(srv.home, "access.hcl"), []byte(access), 0o600); err != nil {
		t.Fatal(err)
	}
	addr, fp := startRemoteDaemon(t, srv)

	// The keepalive blueprint, asking about unknown hosts.
	dir := filepath.Join(t.TempDir(), "keepalive")
	copyDir(t, filepath.Join(repoRoot(t), "e2e", "testdata", "keepalive"), dir)
	bp := filepath.Join(dir, "blueprint.hcl")
	src, err := os.ReadFile(bp)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bp, []byte(strings.Replace(string(src), `unknown_hosts = "deny"`, `unknown_hosts = "ask"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	cassette := filepath.Join(repoRoot(t), "examples", "quickstart", "cassette.json")
	srv.must("run", "-d", bp, "--var", "cassette="+cassette)
	srv.waitState("e2e", "running")
	defer srv.run(context.Background(), "sandbox", "delete", "e2e")

	// The agent's side: a request to a host the policy does not name,
	// held by the egress proxy until someone answers.
	held := make(chan result, 1)
	go func() {
		held <- srv.run(context.Background(), "sandbox", "exec", "e2e", "--", "/bin/sh", "-c",
			"curl -sS -o /dev/null -w '%{http_code}' --max-time 170 https://approve-me.example.org/ 2>&1; true")
	}()

	cli := newEnv(t)
	is.AutoApprove(oidctest.Identity{Subject: "u-otto", Claims: map[string]any{"email": "otto@example.com", "groups": []string{"ops"}}})
	if out := cli.must("login", "--server", "https://"+addr, "--fingerprint", fp); !strings.Contains(out, "as oidc:otto@example.com (operator)") {
		t.Fatalf("login: %s", out)
	}
	var id string
	deadline := time.Now().Add(2 * time.Minute)
	for id == "" {
		var list []struct{ ID, Sandbox, Host string }
		if err := json.Unmarshal([]byte(cli.must("approvals", "list", "-o", "json")), &list); err != nil {
			t.Fatal(err)
		}
		for _, a := range list {
			if a.Host == "approve-me.example.org" && a.Sandbox == "e2e" {
				id = a.ID
			}
		}
		if id == "" {
			select {
			case r := <-held:
				t.Fatalf("the request ended without being held: %+v\n%s", r, srv.daemonLog())
			case <-time.After(300 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("no pending approval for approve-me.example.org within 2 minutes\n%s", srv.daemonLog())
			}
		}
	}
	cli.must("approvals", "approve", id, "--scope", "sandbox")
	select {
	case <-held:
	case <-time.After(3 * time.Minute):
		t.Fatal("the approved request did not finish")
	}

	egress, err := os.ReadFile(filepath.Join(srv.home, "audit", "egress.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`"operator":"oidc:otto@example.com","approval":%q`, id)
	if !strings.Contains(string(egress), want) || !strings.Contains(string(egress), "operator oidc:otto@example.com answered sandbox") {
		t.Errorf("the egress audit does not name the operator (%s):\n%s", want, egress)
	}
	control, err := os.ReadFile(filepath.Join(srv.home, "logs", "control.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(control), `"caller":"oidc:otto@example.com","method":"AnswerApproval","sandbox":"e2e","outcome":"ok"`) {
		t.Errorf("the control audit does not record the approval:\n%s", control)
	}
	cli.must("logout")
}
