package state

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/nemoclave/nemoclave/blueprints/policy"
)

func TestSandboxLifecycleSurvivesReopen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.PutSandbox(ctx, Sandbox{Name: "a", Blueprint: "/bp", Driver: "local", State: "running"}); err != nil {
		t.Fatal(err)
	}
	p := &policy.Policy{Name: "p", Revision: 1, UnknownHosts: policy.UnknownDeny}
	if err := db.AddRevision(ctx, "a", "blueprint", p); err != nil {
		t.Fatal(err)
	}
	p2 := p.Clone()
	p2.Revision = 2
	p2.Network = []policy.NetworkRule{{Name: "approval", Endpoints: []policy.Endpoint{{Host: "example.com"}}}}
	if err := db.AddRevision(ctx, "a", "approval", p2); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AddApproval(ctx, Approval{Sandbox: "a", Host: "example.com", Port: 443, Decision: "allow", Scope: "persist"}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	db, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("state.db mode %v, want 0600", fi.Mode().Perm())
	}
	if err := db.SetSandboxState(ctx, "a", "lost", -1, "daemon restarted"); err != nil {
		t.Fatal(err)
	}
	s, err := db.Sandbox(ctx, "a")
	if err != nil || s.State != "lost" || s.Reason != "daemon restarted" || s.Blueprint != "/bp" {
		t.Fatalf("sandbox = %+v, %v", s, err)
	}
	latest, err := db.LatestPolicy(ctx, "a")
	if err != nil || latest.Revision != 2 || latest.Source != "approval" || latest.Policy.Network[0].Endpoints[0].Host != "example.com" {
		t.Fatalf("latest = %+v, %v", latest, err)
	}
	if as, _ := db.Approvals(ctx, "a"); len(as) != 1 || as[0].Scope != "persist" {
		t.Fatalf("approvals = %+v", as)
	}
	if err := db.DeleteSandbox(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Sandbox(ctx, "a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted sandbox still there: %v", err)
	}
	if _, err := db.LatestPolicy(ctx, "a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revisions survived delete: %v", err)
	}
	if as, _ := db.Approvals(ctx, ""); len(as) != 1 {
		t.Fatal("approval audit trail was deleted with the sandbox")
	}
	if err := db.SetSandboxState(ctx, "ghost", "x", 0, ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("state change of unknown sandbox: %v", err)
	}
}
