package runtime

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
)

// TestAbuse_R7_PolicyStoredBeforeApplied: when the state store cannot
// keep a new policy revision (a full disk; here a trigger makes SQLite
// refuse the insert the way a full disk does), `policy set` fails saying
// so and the revision in force stays the stored one: the gateway never
// enforces a policy that `policy get` and the next daemon would not find.
func TestAbuse_R7_PolicyStoredBeforeApplied(t *testing.T) {
	t.Parallel()
	r, ctx := upRuntime(t)
	runDetached(ctx, t, r, withModel(oneAgent))
	before := r.egress.Policy("box").Revision

	// A second connection to the same database file, as an operator's
	// full disk would be: every new revision is refused.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(r.opts.Home, "state.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TRIGGER disk_full BEFORE INSERT ON policy_revisions BEGIN SELECT RAISE(FAIL, 'database or disk is full'); END`); err != nil {
		t.Fatal(err)
	}
	_, err = r.SetPolicy(ctx, "box", nil, []string{"pypi"})
	if err == nil || !strings.Contains(err.Error(), "could not be stored") || !strings.Contains(err.Error(), "stays in force") {
		t.Fatalf("policy set with a store that cannot write: %v", err)
	}
	if got := r.egress.Policy("box").Revision; got != before {
		t.Fatalf("revision %d is enforced although it was never stored (stored: %d)", got, before)
	}

	// Space freed: the same change is stored, then applied.
	if _, err := db.ExecContext(ctx, `DROP TRIGGER disk_full`); err != nil {
		t.Fatal(err)
	}
	if _, err := r.SetPolicy(ctx, "box", nil, []string{"pypi"}); err != nil {
		t.Fatal(err)
	}
	revs, err := r.db.Revisions(ctx, "box")
	if err != nil {
		t.Fatal(err)
	}
	if got := r.egress.Policy("box").Revision; got != before+1 || len(revs) == 0 || revs[len(revs)-1].Revision != got {
		t.Fatalf("after retry: enforced %d, stored %+v", got, revs)
	}
}
