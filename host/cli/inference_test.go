package cli

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/gateway/inference"
	"github.com/nemoclave/nemoclave/host/config"
)

// TestInferenceSetAndStatusWithoutDaemon: set writes config.yaml and says
// no running sandbox changed; status reads the default and usage.db.
func TestInferenceSetAndStatusWithoutDaemon(t *testing.T) {
	home := t.TempDir()
	out, err := runCLIWithStdin(t, "", "--home", home, "inference", "set", "--provider", "nvidia", "--model", "nvidia/nemotron-3-super-120b-a12b")
	if err != nil || !strings.Contains(out, "wrote the default") || !strings.Contains(out, "no running sandbox was changed") {
		t.Fatalf("%v %s", err, out)
	}
	cfg, err := config.Load(home)
	if err != nil || cfg.Inference.Provider != "nvidia" || cfg.Inference.Model != "nvidia/nemotron-3-super-120b-a12b" {
		t.Fatalf("%v %+v", err, cfg)
	}
	if _, err := runCLIWithStdin(t, "", "--home", home, "inference", "set", "--provider", "x", "--model", "y", "--sandbox", "s1"); err == nil || !strings.Contains(err.Error(), "daemon is not running") {
		t.Fatalf("--sandbox without a daemon: %v", err)
	}
	if _, err := runCLIWithStdin(t, "", "--home", home, "inference", "set", "--model", "y"); err == nil {
		t.Fatal("--provider is required")
	}

	out, err = runCLIWithStdin(t, "", "--home", home, "inference", "status")
	if err != nil || !strings.Contains(out, "nvidia nvidia/nemotron-3-super-120b-a12b") || !strings.Contains(out, "no usage recorded yet") || !strings.Contains(out, "daemon is not running") {
		t.Fatalf("%v %s", err, out)
	}

	store, err := inference.OpenSQLiteUsage(filepath.Join(home, inference.UsageFileName))
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Add(context.Background(), []inference.UsageRecord{
		{Time: time.Now(), Sandbox: "s1", Alias: "smart", Provider: "nim", Model: "m", Operation: "chat", InputTokens: 100, OutputTokens: 20, CostUSD: 0.5},
		{Time: time.Now(), Sandbox: "s1", Alias: "smart", Provider: "nim", Model: "m", Operation: "chat", InputTokens: 1, OutputTokens: 2},
	}); err != nil {
		t.Fatal(err)
	}
	store.Close()
	out, err = runCLIWithStdin(t, "", "--home", home, "-o", "json", "inference", "status")
	if err != nil {
		t.Fatal(err)
	}
	var rep inferenceReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	if rep.DaemonRunning || len(rep.UsageToday) != 1 || rep.UsageToday[0].Requests != 2 || rep.UsageToday[0].InputTokens != 101 || rep.UsageMonth[0].CostUSD != 0.5 {
		t.Fatalf("%+v", rep)
	}
	out, _ = runCLIWithStdin(t, "", "--home", home, "inference", "status")
	if !strings.Contains(out, "s1") || !strings.Contains(out, "smart") {
		t.Fatalf("table: %s", out)
	}
}

// With the state in PostgreSQL ($NEMOCLAVE_STATE_URL, as in the cluster
// Deployment) usage is read from there: `inference status` in any
// replica's home shows what every replica recorded, and the report names
// the database without its password.
func TestInferenceStatusReadsPostgresUsage(t *testing.T) {
	base := os.Getenv("NEMOCLAVE_TEST_POSTGRES_URL")
	if base == "" {
		t.Skip("NEMOCLAVE_TEST_POSTGRES_URL is unset: PostgreSQL usage not tested (source scripts/test-postgres.sh)")
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	name := fmt.Sprintf("cli_usage_%d_%d", os.Getpid(), time.Now().UnixNano())
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	u, _ := neturl.Parse(base)
	u.Path = "/" + name
	u.User = neturl.UserPassword(u.User.Username(), "not-shown")
	url := u.String()
	t.Setenv("NEMOCLAVE_STATE_URL", url)

	// Two replicas record usage of their sandboxes.
	for i, sb := range []string{"on-a", "on-b"} {
		store, err := inference.OpenPostgresUsage(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		if err := store.Add(context.Background(), []inference.UsageRecord{
			{Time: time.Now(), Sandbox: sb, Alias: "smart", Provider: "nim", Model: "m", Operation: "chat", InputTokens: int64(10 * (i + 1)), OutputTokens: 1, CostUSD: 0.25},
		}); err != nil {
			t.Fatal(err)
		}
		store.Close()
	}
	for _, home := range []string{t.TempDir(), t.TempDir()} {
		out, err := runCLIWithStdin(t, "", "--home", home, "-o", "json", "inference", "status")
		if err != nil {
			t.Fatal(err)
		}
		var rep inferenceReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("%v %s", err, out)
		}
		got := map[string]int64{}
		for _, tt := range rep.UsageToday {
			got[tt.Sandbox] = tt.InputTokens
		}
		if got["on-a"] != 10 || got["on-b"] != 20 || len(rep.UsageMonth) != 2 {
			t.Fatalf("usage from PostgreSQL in home %s: %+v", home, rep)
		}
		if strings.Contains(out, "not-shown") || !strings.Contains(rep.UsageFile, name) {
			t.Fatalf("usage source %q: want the database named, without its password", rep.UsageFile)
		}
	}
}
