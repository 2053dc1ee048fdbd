package state

import (
	"context"
	"database/sql"
	"fmt"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/policy"
)

// A listener on one handle is told of the writes another makes, each in
// order and only when the write changed something; when its connection is
// killed (pg_terminate_backend) it says so, reconnects once the server
// lets it, and says it is up again — a write made meanwhile is then found
// by re-reading the state, as Listen's callers do.
func TestStateNotify_ListenReconnectsAndCatchesUp(t *testing.T) {
	t.Parallel()
	base := os.Getenv("NEMOCLAVE_TEST_POSTGRES_URL")
	if base == "" {
		t.Skip("NEMOCLAVE_TEST_POSTGRES_URL is unset: notifications not tested (source scripts/test-postgres.sh)")
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	name := fmt.Sprintf("notify_test_%d_%d", os.Getpid(), time.Now().UnixNano())
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)") })
	u, _ := neturl.Parse(base)
	u.Path = "/" + name
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	listenDB, err := OpenURL(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer listenDB.Close()
	writer, err := OpenURL(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()

	events := make(chan ListenEvent, 1024)
	done := make(chan error, 1)
	go func() { done <- listenDB.Listen(ctx, func(e ListenEvent) { events <- e }) }()
	// next returns the next event that is not a connection error.
	next := func(what string) ListenEvent {
		t.Helper()
		for {
			select {
			case e := <-events:
				if e.Err != nil {
					continue
				}
				return e
			case <-time.After(60 * time.Second):
				t.Fatalf("no event while waiting for %s", what)
			}
		}
	}
	want := func(change string) {
		t.Helper()
		if e := next(change); e.Change != change {
			t.Fatalf("event %+v, want change %q", e, change)
		}
	}
	if e := next("the connection"); !e.Up {
		t.Fatalf("first event %+v, want the connection up", e)
	}

	now := time.Now().UTC().Truncate(time.Millisecond)
	p := PendingApproval{ID: "ap1", Holder: "a", Sandbox: "sb", Host: "h.test", Port: 443, Waiting: 1, Requested: now, Expires: now.Add(time.Hour)}
	if err := writer.PutPendingApproval(ctx, p); err != nil {
		t.Fatal(err)
	}
	want(ChangePending)
	// Writes that change nothing notify nobody: the next event is the
	// grant's.
	if err := writer.PutPendingApproval(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := writer.AddGrant(ctx, "sb", "h.test:443"); err != nil {
		t.Fatal(err)
	}
	want(ChangeGrant)
	if err := writer.AddGrant(ctx, "sb", "h.test:443"); err != nil {
		t.Fatal(err)
	}
	if err := writer.AnswerPendingApproval(ctx, "ap2-unknown", "once", ""); err == nil {
		t.Fatal("answering an unknown request succeeded")
	}
	if err := writer.AddRevision(ctx, "sb", "reload", &policy.Policy{Name: "p", Revision: 2}); err != nil {
		t.Fatal(err)
	}
	want(ChangeRevision)
	if err := writer.AnswerPendingApproval(ctx, "ap1", "persist", "oidc:alice"); err != nil {
		t.Fatal(err)
	}
	want(ChangePending)
	if err := writer.FailPendingApproval(ctx, "ap1", "could not store the revision", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	want(ChangePending)
	if rows, _ := listenDB.PendingApprovals(ctx, "a"); len(rows) != 1 || rows[0].Failure != "could not store the revision" || rows[0].Answer != "persist" {
		t.Fatalf("the failed answer's row: %+v", rows)
	}

	// Kill the listening connection while no new connection is let in:
	// the writer changes the state on the connection its pool keeps.
	if _, err := admin.Exec("ALTER DATABASE " + name + " ALLOW_CONNECTIONS false"); err != nil {
		t.Fatal(err)
	}
	allowed := false
	allow := func() {
		if !allowed {
			allowed = true
			if _, err := admin.Exec("ALTER DATABASE " + name + " ALLOW_CONNECTIONS true"); err != nil {
				t.Fatal(err)
			}
		}
	}
	defer allow()
	var killed int
	if err := admin.QueryRow(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname=$1 AND application_name=$2`,
		name, ListenerApplicationName).Scan(&killed); err != nil || killed != 1 {
		t.Fatalf("terminating the listening connection: %d killed, %v", killed, err)
	}
	select {
	case e := <-events:
		if e.Err == nil || !strings.Contains(e.Err.Error(), "listening for state changes") {
			t.Fatalf("after the kill: %+v, want the connection's loss", e)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the listener did not notice its connection was killed")
	}
	if err := writer.DeletePendingApproval(ctx, "ap1"); err != nil {
		t.Fatalf("writing while the listener is down: %v", err)
	}
	allow()
	if e := next("the reconnection"); !e.Up {
		t.Fatalf("after the outage: %+v, want the connection up again", e)
	}
	// Up means: re-read. The write made meanwhile is there.
	if rows, err := listenDB.PendingApprovals(ctx, ""); err != nil || len(rows) != 0 {
		t.Fatalf("re-read after reconnecting: %+v %v", rows, err)
	}
	// And changes are notified again.
	if err := writer.AddGrant(ctx, "sb", "h2.test:443"); err != nil {
		t.Fatal(err)
	}
	want(ChangeGrant)
	if err := writer.DeleteSandbox(ctx, "sb"); err != nil {
		t.Fatal(err)
	}
	want(ChangePending)

	cancel()
	select {
	case err := <-done:
		if err != context.Canceled {
			t.Fatalf("Listen returned %v after its context ended", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Listen did not return after its context ended")
	}
}

// A SQLite state notifies nobody: Listen says so at once.
func TestStateNotify_SQLiteDoesNotListen(t *testing.T) {
	t.Parallel()
	db, err := Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Listen(context.Background(), func(ListenEvent) {}); err == nil || !strings.Contains(err.Error(), "only a PostgreSQL state") {
		t.Fatalf("Listen on SQLite: %v", err)
	}
}

// A SQLite state written before answers could report their failure gains
// the column when it is opened.
func TestStateNotify_OldSQLiteGainsFailureColumn(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.db.Exec(`ALTER TABLE pending_approvals DROP COLUMN failure`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if db, err = Open(path); err != nil {
		t.Fatalf("reopening a state without pending_approvals.failure: %v", err)
	}
	defer db.Close()
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	if err := db.PutPendingApproval(ctx, PendingApproval{ID: "x", Holder: "a", Sandbox: "sb", Host: "h", Port: 1, Requested: now, Expires: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := db.AnswerPendingApproval(ctx, "x", "deny", ""); err != nil {
		t.Fatal(err)
	}
	if err := db.FailPendingApproval(ctx, "x", "gone", now); err != nil {
		t.Fatal(err)
	}
	if rows, err := db.PendingApprovals(ctx, ""); err != nil || len(rows) != 1 || rows[0].Failure != "gone" {
		t.Fatalf("rows: %+v %v", rows, err)
	}
}

// A quiet listening connection is checked (a ping after each wait without
// a notification) and stays up: many checks later, no loss is reported
// and a change still arrives. Not parallel: it shortens listenPing.
func TestStateNotify_QuietConnectionStaysUp(t *testing.T) {
	base := os.Getenv("NEMOCLAVE_TEST_POSTGRES_URL")
	if base == "" {
		t.Skip("NEMOCLAVE_TEST_POSTGRES_URL is unset: notifications not tested (source scripts/test-postgres.sh)")
	}
	saved := listenPing
	listenPing = 20 * time.Millisecond
	defer func() { listenPing = saved }()
	ctx, cancel := context.WithCancel(context.Background())
	db, err := OpenURL(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	events := make(chan ListenEvent, 1024)
	done := make(chan struct{})
	go func() { defer close(done); _ = db.Listen(ctx, func(e ListenEvent) { events <- e }) }()
	defer func() { cancel(); <-done }()
	if e := <-events; !e.Up {
		t.Fatalf("first event %+v, want up", e)
	}
	time.Sleep(time.Second) // about 50 waits and pings
	if _, err := db.db.Exec(`SELECT pg_notify('` + notifyChannel + `', 'quiet-test')`); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case e := <-events:
			if e.Err != nil || e.Up {
				t.Fatalf("the quiet connection was lost or reopened: %+v", e)
			}
			if e.Change == "quiet-test" {
				return
			}
		case <-time.After(60 * time.Second):
			t.Fatal("no notification after the quiet period")
		}
	}
}
