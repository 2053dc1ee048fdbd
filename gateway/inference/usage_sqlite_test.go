package inference

import (
	"context"
	"testing"
	"time"
)

// A batch larger than one INSERT carries is written whole, every field of
// every row kept, and a failing batch writes nothing.
func TestSQLiteUsageAddsBatchesAcrossStatements(t *testing.T) {
	t.Parallel()
	store, err := OpenSQLiteUsage(t.TempDir() + "/state.db")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	now := time.Now()
	var recs []UsageRecord
	const n = 2*usageRowsPerInsert + 7
	for i := range n {
		recs = append(recs, UsageRecord{Time: now, Sandbox: "sb", Alias: []string{"a", "b"}[i%2], Provider: "p", Model: "m", Operation: "chat",
			InputTokens: int64(i), OutputTokens: 1, CachedInputTokens: 2, CostUSD: 0.5, Estimated: i%3 == 0})
	}
	ctx := context.Background()
	if err := store.Add(ctx, recs); err != nil {
		t.Fatal(err)
	}
	totals, err := store.Totals(ctx, UsageQuery{Sandbox: "sb", Since: now.Add(-time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	var reqs, in, out, cached int64
	var cost float64
	for _, tt := range totals {
		reqs, in, out, cached, cost = reqs+tt.Requests, in+tt.InputTokens, out+tt.OutputTokens, cached+tt.CachedInputTokens, cost+tt.CostUSD
	}
	if len(totals) != 2 || reqs != n || in != n*(n-1)/2 || out != n || cached != 2*n || cost != 0.5*n {
		t.Fatalf("totals %+v: %d requests, %d in, %d out, %d cached, %v USD", totals, reqs, in, out, cached, cost)
	}
	var estimated int
	if err := store.db.QueryRow(`SELECT COUNT(*) FROM inference_usage WHERE estimated = 1`).Scan(&estimated); err != nil || estimated != (n+2)/3 {
		t.Fatalf("estimated rows %d (%v), want %d", estimated, err, (n+2)/3)
	}
	// A batch that cannot be written adds no row.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := store.Add(cctx, recs); err == nil {
		t.Fatal("Add with a cancelled context succeeded")
	}
	if err := store.db.QueryRow(`SELECT COUNT(*) FROM inference_usage`).Scan(&estimated); err != nil || estimated != n {
		t.Fatalf("%d rows after a failed batch (%v), want %d", estimated, err, n)
	}
}
