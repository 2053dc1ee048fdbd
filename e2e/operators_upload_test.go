package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nemoclave/nemoclave/internal/oidctest"
)

// TestOIDC_RemoteRunUploadsBlueprint: `nemoclave run` after `login
// --server` sends the blueprint's directory to the remote daemon, which
// runs it (the offline quickstart, with the replay model) and streams the
// answer back; a viewer cannot run; a blueprint reading a file of the
// daemon's host, absolute or through "..", is refused with a located
// diagnostic.
func TestOIDC_RemoteRunUploadsBlueprint(t *testing.T) {
	is, srv, server, fp := startOIDCDaemon(t)
	cli := newEnv(t)
	ctx := context.Background()

	dir := filepath.Join(t.TempDir(), "quickstart")
	copyDir(t, filepath.Join(repoRoot(t), "examples", "quickstart"), dir)

	is.AutoApprove(oidctest.Identity{Subject: "u-vera", Claims: map[string]any{"email": "vera@example.com", "groups": []string{"viewers"}}})
	cli.must("login", "--server", server, "--fingerprint", fp)
	r := cli.run(ctx, "run", filepath.Join(dir, "blueprint.hcl"))
	if r.code == 0 || !strings.Contains(r.stderr, "oidc:vera@example.com is a viewer; Run needs the operator role") {
		t.Fatalf("viewer runs: exit %d\n%s", r.code, r.stderr)
	}

	is.AutoApprove(oidctest.Identity{Subject: "u-otto", Claims: map[string]any{"email": "otto@example.com", "groups": []string{"ops"}}})
	cli.must("login", "--server", server, "--fingerprint", fp)
	r = cli.run(ctx, "run", filepath.Join(dir, "blueprint.hcl"))
	if r.code != 0 {
		t.Fatalf("operator runs the quickstart remotely: exit %d\nstdout:\n%s\nstderr:\n%s\nserver:\n%s", r.code, r.stdout, r.stderr, srv.daemonLog())
	}
	if !strings.Contains(r.stderr, "uploading quickstart (") || !strings.Contains(r.stderr, "✓ start agent") {
		t.Errorf("progress of a remote run:\n%s", r.stderr)
	}
	if !strings.Contains(r.stdout, "→ list_files") {
		t.Errorf("the agent made no tool call; stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	}
	stored, _ := filepath.Glob(filepath.Join(srv.home, "uploads", "*", "quickstart", "blueprint.hcl"))
	if len(stored) != 1 {
		t.Errorf("the upload is not stored once under the server's uploads: %v", stored)
	}
	if b, err := os.ReadFile(filepath.Join(srv.home, "logs", "control.jsonl")); err != nil || !strings.Contains(string(b), `"caller":"oidc:otto@example.com","method":"Run","outcome":"ok"`) {
		t.Errorf("the remote run is not audited with its caller: %v\n%s", err, b)
	}

	// Reading the daemon's host through file() is refused, located.
	for name, expr := range map[string]string{"abs": `file("/etc/passwd")`, "dotdot": `file("../secret.txt")`} {
		bad := filepath.Join(t.TempDir(), name)
		copyDir(t, filepath.Join(repoRoot(t), "examples", "quickstart"), bad)
		src, err := os.ReadFile(filepath.Join(bad, "blueprint.hcl"))
		if err != nil {
			t.Fatal(err)
		}
		src = append(src, []byte("\nlocals {\n  leak = "+expr+"\n}\n")...)
		line := strings.Count(string(src), "\n") - 1
		if err := os.WriteFile(filepath.Join(bad, "blueprint.hcl"), src, 0o644); err != nil {
			t.Fatal(err)
		}
		r = cli.run(ctx, "run", filepath.Join(bad, "blueprint.hcl"))
		want := map[string]string{"abs": "/etc/passwd is an absolute path", "dotdot": "../secret.txt leads out of the upload"}[name]
		// The diagnostic names the file as the caller knows it, wrapped.
		if flat := strings.Join(strings.Fields(r.stderr), " "); r.code == 0 || !strings.Contains(flat, want) || !strings.Contains(flat, fmt.Sprintf("on blueprint.hcl line %d, in locals:", line)) {
			t.Errorf("%s: exit %d, want a located %q:\n%s", expr, r.code, want, r.stderr)
		}
		if strings.Contains(r.stderr+r.stdout, "root:x:0:0") {
			t.Errorf("%s: the daemon host's file reached the caller", expr)
		}
	}
}
