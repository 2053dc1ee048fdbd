package runtime

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/host/state"
	"github.com/nemoclave/nemoclave/policy"
	"github.com/nemoclave/nemoclave/sandbox"
)

// notifyReplicas starts two replicas on one PostgreSQL state serving
// sandbox "sb" whose fallback poll, while they listen, is an hour: what
// reaches a replica within the test came by notification. It returns the
// replicas, their egress addresses, the upstream's port and the state URL.
func notifyReplicas(t *testing.T, prefix string) (a, b *Runtime, egressA, egressB string, port int, stateURL string) {
	t.Helper()
	stateURL = postgresState(t, prefix)
	ctx := context.Background()
	upl, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no 127.0.0.2 to serve the upstream on: %v", err)
	}
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "upstream saw ", r.URL.Path) }))
	up.Listener.Close()
	up.Listener = upl
	up.Start()
	t.Cleanup(up.Close)
	port = upl.Addr().(*net.TCPAddr).Port
	lo := netip.MustParseAddr("127.0.0.2")
	replica := func() (*Runtime, string) {
		r, err := New(ctx, Options{Home: t.TempDir(), StateURL: stateURL, Executable: "/bin/true", PluginBinDir: pluginDir,
			Drivers:        map[string]sandbox.Driver{"local": newFakeDriver(0)},
			EgressResolver: nameResolver{"new.test": lo, "other.test": lo, "third.test": lo}, UnsafeAllowLoopback: true,
			sharedPollListening: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close(context.Background()) })
		pol := &policy.Policy{Name: "shared", Revision: 1, UnknownHosts: policy.UnknownAsk,
			Filesystem: policy.Filesystem{ReadOnly: []string{"/usr"}}}
		return r, serveEgress(t, r, pol)
	}
	a, egressA = replica()
	b, egressB = replica()
	return a, b, egressA, egressB, port, stateURL
}

// waitFor polls cond until it holds (generous deadline: a loaded machine).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type egressResult struct {
	code int
	body string
	err  error
}

func holdThrough(addr, target string) chan egressResult {
	ch := make(chan egressResult, 1)
	go func() { c, body, err := throughEgress(addr, target); ch <- egressResult{c, body, err} }()
	return ch
}

// pendingID waits until replica r lists a pending approval for host.
func pendingID(t *testing.T, r *Runtime, host string) string {
	t.Helper()
	var id string
	waitFor(t, "a pending approval for "+host, func() bool {
		list, err := r.ListApprovals(context.Background(), "sb")
		if err != nil {
			t.Fatal(err)
		}
		for _, ap := range list {
			if ap.Host == host {
				id = ap.Id
				return true
			}
		}
		return false
	})
	return id
}

func wantThrough(t *testing.T, res chan egressResult, path string) {
	t.Helper()
	select {
	case r := <-res:
		if r.err != nil || r.code != http.StatusOK || r.body != "upstream saw "+path {
			t.Fatalf("the held request after the answer: %d %q %v", r.code, r.body, r.err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the holder did not let the request through after the answer")
	}
}

// With PostgreSQL state an answer given on replica B reaches replica A,
// which holds the request, by notification: the replicas poll only once an
// hour while they listen. After the listening connections are killed
// (pg_terminate_backend) they reconnect and answers keep arriving.
func TestSharedApprovals_NotifiedNotPolled(t *testing.T) {
	a, b, egressA, _, port, stateURL := notifyReplicas(t, "rt_notify")
	ctx := context.Background()
	listening := func(n int64) func() bool {
		return func() bool {
			return a.shared.listening.Load() && b.shared.listening.Load() && a.shared.ups.Load() >= n && b.shared.ups.Load() >= n
		}
	}
	waitFor(t, "both replicas listening", listening(1))

	res := holdThrough(egressA, fmt.Sprintf("http://new.test:%d/first", port))
	id := pendingID(t, b, "new.test")
	if _, err := b.AnswerApproval(ctx, id, true, "once"); err != nil {
		t.Fatalf("answering on B a request A holds: %v", err)
	}
	wantThrough(t, res, "/first")

	// Kill both listening connections: each replica reconnects.
	admin, err := sql.Open("pgx", stateURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var killed int
	if err := admin.QueryRow(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname=current_database() AND application_name=$1`,
		state.ListenerApplicationName).Scan(&killed); err != nil || killed != 2 {
		t.Fatalf("terminating the listening connections: %d killed, %v", killed, err)
	}
	waitFor(t, "both replicas listening again", listening(2))

	res = holdThrough(egressA, fmt.Sprintf("http://other.test:%d/second", port))
	id = pendingID(t, b, "other.test")
	if _, err := b.AnswerApproval(ctx, id, true, "once"); err != nil {
		t.Fatalf("answering on B after the reconnection: %v", err)
	}
	wantThrough(t, res, "/second")
}

// An answer given on B that A, holding the request, cannot apply fully —
// "persist" whose policy revision the state refuses to store — is written
// back with the reason, and B's AnswerApproval (the CLI's `approvals
// approve`) fails with it and says what to do.
func TestSharedApprovals_FailureReachesTheAnsweringReplica(t *testing.T) {
	a, b, egressA, _, port, stateURL := notifyReplicas(t, "rt_notify_fail")
	ctx := context.Background()
	waitFor(t, "both replicas listening", func() bool { return a.shared.listening.Load() && b.shared.listening.Load() })

	// The state refuses revisions made by approvals (a real failure of
	// the real database).
	admin, err := sql.Open("pgx", stateURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec(`ALTER TABLE policy_revisions ADD CONSTRAINT no_approvals CHECK (source <> 'approval')`); err != nil {
		t.Fatal(err)
	}

	res := holdThrough(egressA, fmt.Sprintf("http://third.test:%d/p", port))
	id := pendingID(t, b, "third.test")
	_, err = b.AnswerApproval(ctx, id, true, "persist")
	if err == nil {
		t.Fatal("B reported success for a persist A could not store")
	}
	for _, want := range []string{id, a.holder, "could not store the new policy revision", "no_approvals", "--scope persist"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("B's error %q does not say %q", err, want)
		}
	}
	// A let the request through (for the sandbox's lifetime) ...
	wantThrough(t, res, "/p")
	// ... and the reported row is gone.
	rows, err := b.db.PendingApprovals(ctx, "")
	if err != nil || len(rows) != 0 {
		t.Fatalf("pending rows after the failure was reported: %+v %v", rows, err)
	}
}
