package state

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/policy"
)

// Two handles on one state (two replicas): racing to store a sandbox's
// egress CA, both get the same one; pending approvals written by one are
// listed and answered by the other, an answer is written once; deleting
// the sandbox removes its CA, grants and pending approvals.
func TestSharedEgressState(t *testing.T) {
	t.Parallel()
	for name, mk := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			open := mk(t)
			ctx := context.Background()
			dbs := twoHandles(t, open)
			if got, want := dbs[0].Shared(), name == "postgres"; got != want {
				t.Fatalf("Shared() = %v on %s", got, name)
			}

			var wg sync.WaitGroup
			var certs [2]string
			var errs [2]error
			for i, db := range dbs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c, k, err := db.LoadOrStoreCA(ctx, "sb", []byte("cert-"+string(rune('a'+i))), []byte("key-"+string(rune('a'+i))))
					certs[i], errs[i] = string(c)+"|"+string(k), err
				}()
			}
			wg.Wait()
			if errs[0] != nil || errs[1] != nil {
				t.Fatal(errs)
			}
			if certs[0] != certs[1] || (certs[0] != "cert-a|key-a" && certs[0] != "cert-b|key-b") {
				t.Fatalf("racing replicas got CAs %q and %q, want one pair for both", certs[0], certs[1])
			}

			now := time.Now().UTC().Truncate(time.Millisecond)
			p := PendingApproval{ID: "ap1", Holder: "replica-a", Sandbox: "sb", Host: "new.test", Port: 443, Method: "GET", Path: "/x",
				Revision: 2, Waiting: 1, Requested: now, Expires: now.Add(time.Minute)}
			if err := dbs[0].PutPendingApproval(ctx, p); err != nil {
				t.Fatal(err)
			}
			p.Waiting = 3
			if err := dbs[0].PutPendingApproval(ctx, p); err != nil {
				t.Fatal(err)
			}
			list, err := dbs[1].PendingApprovals(ctx, "")
			if err != nil || len(list) != 1 || list[0] != p {
				t.Fatalf("listed on the other handle: %+v %v, want %+v", list, err, p)
			}
			if err := dbs[1].AnswerPendingApproval(ctx, "ap1", "sandbox", "oidc:alice"); err != nil {
				t.Fatal(err)
			}
			if err := dbs[0].AnswerPendingApproval(ctx, "ap1", "deny", "oidc:bob"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("a second answer: %v, want ErrNotFound", err)
			}
			p.Waiting = 4 // the holder's next mirror keeps the answer
			if err := dbs[0].PutPendingApproval(ctx, p); err != nil {
				t.Fatal(err)
			}
			mine, err := dbs[0].PendingApprovals(ctx, "replica-a")
			if err != nil || len(mine) != 1 || mine[0].Answer != "sandbox" || mine[0].Operator != "oidc:alice" {
				t.Fatalf("the holder's rows: %+v %v", mine, err)
			}
			if other, _ := dbs[0].PendingApprovals(ctx, "replica-b"); len(other) != 0 {
				t.Fatalf("rows of another holder: %+v", other)
			}
			if err := dbs[1].AddGrant(ctx, "sb", "new.test:443"); err != nil {
				t.Fatal(err)
			}
			if err := dbs[0].AddGrant(ctx, "sb", "new.test:443"); err != nil {
				t.Fatal(err)
			}
			if g, err := dbs[0].Grants(ctx); err != nil || len(g["sb"]) != 1 || g["sb"][0] != "new.test:443" {
				t.Fatalf("grants: %v %v", g, err)
			}

			if err := dbs[0].DeleteSandbox(ctx, "sb"); err != nil {
				t.Fatal(err)
			}
			if g, _ := dbs[1].Grants(ctx); len(g) != 0 {
				t.Fatalf("grants after delete: %v", g)
			}
			if l, _ := dbs[1].PendingApprovals(ctx, ""); len(l) != 0 {
				t.Fatalf("pending approvals after delete: %v", l)
			}
			if c, _, _ := dbs[1].LoadOrStoreCA(ctx, "sb", []byte("cert-new"), []byte("key-new")); string(c) != "cert-new" {
				t.Fatalf("the deleted sandbox's CA was kept: %q", c)
			}

			for _, rev := range []int{1, 3, 2} {
				if err := dbs[0].AddRevision(ctx, "sb3", "reload", &policy.Policy{Name: "p", Revision: rev}); err != nil {
					t.Fatal(err)
				}
			}
			if l, err := dbs[1].LatestRevisions(ctx); err != nil || l["sb3"] != 3 {
				t.Fatalf("LatestRevisions: %v %v, want sb3 at 3", l, err)
			}

			// Expired rows and a holder's own go on DeletePendingApprovalsOf.
			old := PendingApproval{ID: "old", Holder: "dead", Sandbox: "sb2", Host: "h", Port: 1, Requested: now.Add(-time.Hour), Expires: now.Add(-time.Hour)}
			mineToo := PendingApproval{ID: "mine", Holder: "me", Sandbox: "sb2", Host: "h", Port: 2, Requested: now, Expires: now.Add(time.Hour)}
			live := PendingApproval{ID: "live", Holder: "other", Sandbox: "sb2", Host: "h", Port: 3, Requested: now, Expires: now.Add(time.Hour)}
			for _, a := range []PendingApproval{old, mineToo, live} {
				if err := dbs[0].PutPendingApproval(ctx, a); err != nil {
					t.Fatal(err)
				}
			}
			if err := dbs[0].DeletePendingApprovalsOf(ctx, "me", now.Add(-time.Minute)); err != nil {
				t.Fatal(err)
			}
			if l, _ := dbs[0].PendingApprovals(ctx, ""); len(l) != 1 || l[0].ID != "live" {
				t.Fatalf("after DeletePendingApprovalsOf: %+v", l)
			}
		})
	}
}

// A hand run's blueprint written by one replica is read by another; a
// re-run replaces it, DeleteHandRun and DeleteSandbox remove it.
func TestSharedHandRuns(t *testing.T) {
	t.Parallel()
	for name, mk := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			open := mk(t)
			ctx := context.Background()
			dbs := twoHandles(t, open)
			spec := []byte(`{"upload":"AAEC","vars":{"x":"1"}}`)
			for _, sb := range []string{"one", "two"} {
				if err := dbs[0].PutHandRun(ctx, HandRun{Sandbox: sb, Digest: "d1", Spec: spec}); err != nil {
					t.Fatal(err)
				}
				if err := dbs[0].PutSandbox(ctx, Sandbox{Name: sb, Blueprint: "/bp", Driver: "kubernetes", State: "running"}); err != nil {
					t.Fatal(err)
				}
			}
			if err := dbs[0].PutHandRun(ctx, HandRun{Sandbox: "two", Digest: "d2", Spec: []byte(`{}`)}); err != nil {
				t.Fatal(err)
			}
			got, err := dbs[1].HandRunDigests(ctx)
			if err != nil || len(got) != 2 || got["one"] != "d1" || got["two"] != "d2" {
				t.Fatalf("HandRunDigests on the other handle = %v, %v; want one=d1 two=d2", got, err)
			}
			h, err := dbs[1].HandRunSpec(ctx, "one")
			if err != nil || h.Digest != "d1" || string(h.Spec) != string(spec) {
				t.Fatalf("HandRunSpec(one) = %+v, %v", h, err)
			}
			if err := dbs[1].DeleteSandbox(ctx, "one"); err != nil {
				t.Fatal(err)
			}
			if _, err := dbs[0].HandRunSpec(ctx, "one"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("after DeleteSandbox the hand run is still there: %v", err)
			}
			if err := dbs[0].DeleteHandRun(ctx, "two"); err != nil {
				t.Fatal(err)
			}
			if got, err := dbs[1].HandRunDigests(ctx); err != nil || len(got) != 0 {
				t.Fatalf("after deleting both: %v, %v", got, err)
			}
		})
	}
}

// twoHandles opens two handles on one state, as two replicas hold it;
// they are closed when the test ends.
func twoHandles(t *testing.T, open func() (*DB, error)) [2]*DB {
	t.Helper()
	var dbs [2]*DB
	for i := range dbs {
		db, err := open()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		dbs[i] = db
	}
	return dbs
}
