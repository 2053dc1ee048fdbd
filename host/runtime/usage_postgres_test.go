package runtime

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/gateway/inference"
	"github.com/nemoclave/nemoclave/sandbox"
)

// With the state in PostgreSQL (--state-url, as in the cluster Deployment)
// the daemon records usage there and `inference status` answers from it:
// any replica shows what every replica recorded, and names the database
// without its password.
func TestInferenceStatusReadsPostgresUsage(t *testing.T) {
	base := os.Getenv("NEMOCLAVE_TEST_POSTGRES_URL")
	if base == "" {
		t.Skip("NEMOCLAVE_TEST_POSTGRES_URL is unset: PostgreSQL usage not tested (source scripts/test-postgres.sh)")
	}
	ctx := context.Background()
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	name := fmt.Sprintf("rt_usage_%d_%d", os.Getpid(), time.Now().UnixNano())
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(base)
	u.Path = "/" + name
	pass, _ := u.User.Password()
	stateURL := u.String()

	// Two replicas record usage of their sandboxes.
	for i, sb := range []string{"on-a", "on-b"} {
		store, err := inference.OpenPostgresUsage(ctx, stateURL)
		if err != nil {
			t.Fatal(err)
		}
		if err := store.Add(ctx, []inference.UsageRecord{
			{Time: time.Now(), Sandbox: sb, Alias: "smart", Provider: "nim", Model: "m", Operation: "chat", InputTokens: int64(10 * (i + 1)), OutputTokens: 1, CostUSD: 0.25},
		}); err != nil {
			t.Fatal(err)
		}
		store.Close()
	}
	for range 2 { // any replica
		r, err := New(ctx, Options{Home: t.TempDir(), StateURL: stateURL, Executable: "/bin/true", PluginBinDir: pluginDir,
			Drivers: map[string]sandbox.Driver{"local": newFakeDriver(0)}})
		if err != nil {
			t.Fatal(err)
		}
		st, err := r.InferenceStatus(ctx, "")
		r.Close(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int64{}
		for _, tt := range st.UsageToday {
			got[tt.Sandbox] = tt.InputTokens
		}
		if got["on-a"] != 10 || got["on-b"] != 20 || len(st.UsageMonth) != 2 {
			t.Fatalf("usage from PostgreSQL: %+v", st)
		}
		if (pass != "" && strings.Contains(st.UsageFile, pass)) || !strings.Contains(st.UsageFile, name) {
			t.Fatalf("usage source %q: want the database named, without its password", st.UsageFile)
		}
	}
}
