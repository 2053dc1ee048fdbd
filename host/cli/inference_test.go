package cli

import (
	"context"
	"encoding/json"
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
