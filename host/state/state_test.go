package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	neturl "net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/policy"
)

// backends opens the state on SQLite, and on a fresh PostgreSQL database
// when the test PostgreSQL runs (scripts/test-postgres.sh exports its URL).
func backends(t *testing.T) map[string]func(t *testing.T) (open func() (*DB, error)) {
	out := map[string]func(t *testing.T) (open func() (*DB, error)){
		"sqlite": func(t *testing.T) func() (*DB, error) {
			path := filepath.Join(t.TempDir(), "state.db")
			return func() (*DB, error) { return Open(path) }
		},
	}
	base := os.Getenv("NEMOCLAVE_TEST_POSTGRES_URL")
	if base == "" {
		t.Log("NEMOCLAVE_TEST_POSTGRES_URL is unset: PostgreSQL state not tested (source scripts/test-postgres.sh)")
		return out
	}
	out["postgres"] = func(t *testing.T) func() (*DB, error) {
		admin, err := sql.Open("pgx", base)
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close()
		name := fmt.Sprintf("state_test_%d_%d", os.Getpid(), time.Now().UnixNano())
		if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
			t.Fatal(err)
		}
		u, _ := neturl.Parse(base)
		u.Path = "/" + name
		return func() (*DB, error) { return OpenURL(context.Background(), u.String()) }
	}
	return out
}

func TestSandboxLifecycleSurvivesReopen(t *testing.T) {
	t.Parallel()
	for name, mk := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testLifecycle(t, mk(t), name == "sqlite")
		})
	}
}

func testLifecycle(t *testing.T, open func() (*DB, error), file bool) {
	ctx := context.Background()
	db, err := open()
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

	db, err = open()
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
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
	if id, err := db.AddApproval(ctx, Approval{Sandbox: "a", Host: "b.example", Port: 443, Decision: "deny", Scope: "once"}); err != nil || id < 2 {
		t.Fatalf("second approval id = %d, %v", id, err)
	}
	if as, _ := db.Approvals(ctx, "a"); len(as) != 2 || as[1].Scope != "persist" || as[0].Host != "b.example" {
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
	if as, _ := db.Approvals(ctx, ""); len(as) != 2 {
		t.Fatal("approval audit trail was deleted with the sandbox")
	}
	if err := db.SetSandboxState(ctx, "ghost", "x", 0, ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("state change of unknown sandbox: %v", err)
	}
}

func TestSQLiteFileIsPrivate(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("state.db mode %v, want 0600", fi.Mode().Perm())
	}
}
