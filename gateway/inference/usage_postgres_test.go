package inference

import (
	"context"
	"database/sql"
	"fmt"
	neturl "net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// postgresUsageURL creates a fresh database on the test PostgreSQL
// (scripts/test-postgres.sh exports its URL) and returns its URL.
func postgresUsageURL(t *testing.T) string {
	t.Helper()
	base := os.Getenv("NEMOCLAVE_TEST_POSTGRES_URL")
	if base == "" {
		t.Skip("NEMOCLAVE_TEST_POSTGRES_URL is unset: PostgreSQL usage not tested (source scripts/test-postgres.sh)")
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	name := fmt.Sprintf("usage_test_%d_%d", os.Getpid(), time.Now().UnixNano())
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	u, _ := neturl.Parse(base)
	u.Path = "/" + name
	return u.String()
}

// Two daemon replicas with the same --state-url: both open the usage
// table at once, a router on one meters its calls there, and the other
// reads the same totals (what `inference status` shows on any replica);
// a router started on the other replica resumes the day's budget from it.
func TestPostgresUsageSharedByReplicas(t *testing.T) {
	t.Parallel()
	url := postgresUsageURL(t)
	ctx := context.Background()
	stores := make([]*SQLUsage, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range stores {
		wg.Add(1)
		go func() { defer wg.Done(); stores[i], errs[i] = OpenPostgresUsage(ctx, url) }()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		t.Cleanup(func() { stores[i].Close() })
	}
	a, b := stores[0], stores[1]

	p := startProviders(t)
	e := newEnv(t, p, func(c *Config) { c.Usage = a })
	for _, body := range []string{chat("gpt"), chat("gpt"), `{"model":"claude","stream":true,"messages":[{"role":"user","content":"a b c"}]}`} {
		if code, _, out := e.post(t, "/v1/chat/completions", body, nil); code != 200 {
			t.Fatalf("%d %s", code, out)
		}
	}
	e.router.Close() // flush
	totals, err := b.Totals(ctx, UsageQuery{Sandbox: "sb1", Since: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]UsageTotal{}
	for _, tt := range totals {
		got[tt.Alias] = tt
	}
	if g := got["gpt"]; g.Requests != 2 || g.InputTokens != 2 || g.OutputTokens != 4 || g.Model != "gpt-test" || g.Provider != "openai" || g.CostUSD <= 0 {
		t.Fatalf("gpt usage read on the other replica: %+v", g)
	}
	if c := got["claude"]; c.Requests != 1 || c.InputTokens != 3 || c.OutputTokens != 4 {
		t.Fatalf("streamed usage read on the other replica: %+v", c)
	}
	// Both replicas write; either sees the sum. An estimated record and a
	// query for another sandbox stay apart.
	if err := b.Add(ctx, []UsageRecord{{Time: time.Now(), Sandbox: "sb1", Alias: "gpt", Provider: "openai", Model: "gpt-test", Operation: "chat", InputTokens: 10, OutputTokens: 1, Estimated: true}}); err != nil {
		t.Fatal(err)
	}
	totals, err = a.Totals(ctx, UsageQuery{Since: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range totals {
		if tt.Alias == "gpt" && (tt.Requests != 3 || tt.InputTokens != 12) {
			t.Fatalf("after the second replica wrote: %+v", tt)
		}
	}
	if other, err := a.Totals(ctx, UsageQuery{Sandbox: "sb2", Since: time.Now().Add(-time.Hour)}); err != nil || len(other) != 0 {
		t.Fatalf("another sandbox: %v %+v", err, other)
	}
	// A router on the other replica resumes today's tokens: 12+3 in, 4+1+4 out.
	r2, err := New(ctx, Config{Sandbox: "sb1", Routes: testRoutes(), Usage: b, Limits: Limits{Budget: Budget{TokensPerDay: 24}}})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if used := r2.Status().Usage.TokensToday; used != 24 {
		t.Fatalf("the other replica's router resumed %d tokens today, want 24", used)
	}
}

func TestPostgresUsageRefusesABadURL(t *testing.T) {
	t.Parallel()
	_, err := OpenPostgresUsage(context.Background(), "postgres://nobody:secret@127.0.0.1:1/none?connect_timeout=2")
	if err == nil {
		t.Fatal("opened a database on a closed port")
	}
	if msg := err.Error(); !strings.Contains(msg, "check the URL") || strings.Contains(msg, "secret") {
		t.Fatalf("error %q should say what to check and hide the password", msg)
	}
}
