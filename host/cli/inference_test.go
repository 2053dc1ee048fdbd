package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/nemoclave/nemoclave/host/api/daemonpb"
	"github.com/nemoclave/nemoclave/host/config"
)

// TestInferenceSetWithoutDaemon: set writes config.yaml and says no
// running sandbox changed.
func TestInferenceSetWithoutDaemon(t *testing.T) {
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

}

// `inference status` prints the daemon's answer: -o json with the API's
// field names, int64 counts as JSON numbers, lists present even when
// empty; the table with the default, live routes and the month's usage.
func TestInferenceStatusRendersTheDaemonsAnswer(t *testing.T) {
	t.Parallel()
	st := &pb.InferenceStatusResponse{
		Default: &pb.InferenceDefault{Provider: "nvidia", Model: "nvidia/nemotron-3-super-120b-a12b"},
		Live: []*pb.SandboxInference{{Sandbox: "s1", Default: "smart",
			Routes:    []*pb.Route{{Alias: "smart", Provider: "plugin.llm.nim", Model: "m", Fallback: []string{"cheap"}}},
			Providers: []*pb.ProviderHealth{{Provider: "plugin.llm.nim", State: "open", ConsecutiveFailures: 3, LastError: "503", OpenUntil: timestamppb.New(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC))}},
			Usage:     &pb.BudgetStatus{TokensToday: 5_000_000_000, Budget: &pb.Budget{TokensPerDay: 6_000_000_000}}}},
		UsageToday: []*pb.UsageTotal{{Sandbox: "s1", Alias: "smart", Provider: "nim", Model: "m", Requests: 2, InputTokens: 101, OutputTokens: 22, CostUsd: 0.5}},
		UsageFile:  "/home/u/.nemoclave/usage.db",
	}
	st.UsageMonth = st.UsageToday
	var out bytes.Buffer
	if err := Render(&out, "json", st, nil); err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Default struct{ Provider, Model string } `json:"default"`
		Live    []struct {
			Sandbox string `json:"sandbox"`
			Routes  []struct {
				Alias    string   `json:"alias"`
				Fallback []string `json:"fallback"`
			} `json:"routes"`
			Providers []struct {
				ConsecutiveFailures int    `json:"consecutive_failures"`
				OpenUntil           string `json:"open_until"`
			} `json:"providers"`
			Usage struct {
				TokensToday int64 `json:"tokens_today"`
				Budget      struct {
					TokensPerDay int64 `json:"tokens_per_day"`
				} `json:"budget"`
			} `json:"usage"`
		} `json:"live"`
		UsageToday []struct {
			Requests    int64   `json:"requests"`
			InputTokens int64   `json:"input_tokens"`
			CostUSD     float64 `json:"cost_usd"`
		} `json:"usage_today"`
		Notes []string `json:"notes"`
	}
	raw := out.String()
	if err := json.Unmarshal([]byte(raw), &rep); err != nil {
		t.Fatalf("%v\n%s", err, raw)
	}
	if rep.Default.Model != "nvidia/nemotron-3-super-120b-a12b" || len(rep.Live) != 1 || rep.Live[0].Routes[0].Fallback[0] != "cheap" ||
		rep.Live[0].Providers[0].ConsecutiveFailures != 3 || rep.Live[0].Providers[0].OpenUntil != "2026-05-01T12:00:00Z" ||
		rep.Live[0].Usage.TokensToday != 5_000_000_000 || rep.Live[0].Usage.Budget.TokensPerDay != 6_000_000_000 ||
		len(rep.UsageToday) != 1 || rep.UsageToday[0].Requests != 2 || rep.UsageToday[0].InputTokens != 101 || rep.UsageToday[0].CostUSD != 0.5 {
		t.Fatalf("%+v\n%s", rep, raw)
	}
	if !strings.Contains(raw, `"notes": []`) || strings.Index(raw, `"default"`) > strings.Index(raw, `"live"`) {
		t.Errorf("lists are always present and fields keep the .proto order:\n%s", raw)
	}

	out.Reset()
	if err := Render(&out, "yaml", st, nil); err != nil || !strings.Contains(out.String(), "tokens_today: 5000000000") {
		t.Errorf("yaml: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := Render(&out, "table", st, func(tw tabWriter) { renderInference(tw, st) }); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"nvidia nvidia/nemotron-3-super-120b-a12b", "sandbox s1 (default alias smart)", "3 consecutive failures", "limit 6000000000", "101"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}
