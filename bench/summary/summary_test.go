package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSummary parses saved outputs in each bench script's exact format and
// checks every measure, ratio and verdict.
func TestSummary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "nemoclave")
	if err := os.WriteFile(bin, make([]byte, 101_000_000/1000), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := build("testdata/out", bin, "quick")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]measure{}
	for _, m := range s.Measures {
		got[m.Name] = m
	}
	if len(got) != len(targets) {
		t.Fatalf("%d measures, want one per target (%d)", len(got), len(targets))
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-6*math.Max(1, math.Abs(b)) }
	for _, c := range []struct {
		name  string
		value float64
		peer  string
		pv    float64
		ratio float64 // 0: not checked
		met   bool
		load  float64 // 0: no load recorded
	}{
		{"sandbox_create_exec_exit_ratio_bwrap", 14.62 / 4.86, "bwrap_ms", 4.86, 14.62 / 4.86, false, 1.3},
		{"sandbox_create_exec_exit_p50_ms", 14.62, "bwrap", 4.86, 14.62 / 4.86, true, 1.3},
		{"sandbox_concurrent50_p99_ms", 377.26, "", 0, 0, true, 1.3},
		{"gateway_added_p50_ms_c64", 12.45, "portkey", 52.13, 12.45 / 52.13, false, 3},
		{"gateway_added_p99_ms_c64", 27.04, "portkey", 201.40, 27.04 / 201.40, false, 3},
		{"gateway_ttft_added_p50_ms_c1", 1.04, "", 0, 0, false, 3},
		{"gateway_ttft_added_p50_ms_c64", 42.23, "", 0, 0, false, 3},
		{"gateway_throughput_rps_c64", 3874, "portkey", 967, 3874.0 / 967, false, 3},
		{"egress_connect_added_p50_us", 236, "squid", 308, 236.0 / 308, false, 1},
		{"egress_bulk_pct_of_direct", 100 * 3148.0 / 5401, "squid", 100 * 2086.0 / 5401, 3148.0 / 2086, false, 1},
		{"plugin_roundtrip_p50_us", 62.8, "in_process", 4.7, 62.8 / 4.7, false, 0},
		{"plugin_cold_start_p50_ms", 61.6, "", 0, 0, false, 0},
		{"retrieval_exact_p50_ms", 11.3, "plain_loop", 138.2, 11.3 / 138.2, false, 0},
		{"retrieval_approx_p50_ms", 2.68, "", 0, 0, false, 0}, // fast, but measured at 100k, not 1M
		{"memory_recall_10k_p50_ms", 4.6, "", 0, 0, false, 0},
		{"run_cold_ms", 599, "", 0, 0, false, 0},
		{"run_warm_ms", 236, "", 0, 0, false, 0},
		{"rss_10_idle_sandboxes_mib", 1649, "", 0, 0, false, 0},
		{"binary_size_mb", 0.101, "", 0, 0, true, 0},
	} {
		m := got[c.name]
		if m.Value == nil || !near(*m.Value, c.value) {
			t.Errorf("%s: value %v, want %v", c.name, m.Value, c.value)
			continue
		}
		if c.peer != "" && !near(m.Peers[c.peer], c.pv) {
			t.Errorf("%s: peer %s = %v, want %v", c.name, c.peer, m.Peers[c.peer], c.pv)
		}
		if c.ratio != 0 && (m.Ratio == nil || !near(*m.Ratio, c.ratio)) {
			t.Errorf("%s: ratio %v, want %v", c.name, m.Ratio, c.ratio)
		}
		if m.Met != c.met {
			t.Errorf("%s: met %v, want %v", c.name, m.Met, c.met)
		}
		if c.load != 0 && (m.Load == nil || !near(*m.Load, c.load)) {
			t.Errorf("%s: load %v, want %v", c.name, m.Load, c.load)
		}
	}
	if n := got["gateway_ttft_added_p50_ms_c64"].Note; !strings.Contains(n, "portkey") {
		t.Errorf("missing portkey streaming note: %q", n)
	}
	if _, err := json.Marshal(s); err != nil {
		t.Fatal(err)
	}
}

// TestSummaryMissingOutputs: an area that did not run is reported as not
// measured and not met, never silently dropped.
func TestSummaryMissingOutputs(t *testing.T) {
	dir := t.TempDir()
	data, _ := os.ReadFile("testdata/out/runtime.txt")
	os.WriteFile(filepath.Join(dir, "runtime.txt"), data, 0o644)
	s, err := build(dir, filepath.Join(dir, "absent"), "quick")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range s.Measures {
		if strings.HasPrefix(m.Name, "run_") || m.Name == "rss_10_idle_sandboxes_mib" {
			continue
		}
		if m.Value != nil || m.Met || !strings.Contains(m.Note, "not measured") {
			t.Errorf("%s: %+v, want not measured", m.Name, m)
		}
	}
	if _, err := build(t.TempDir(), "", "quick"); err == nil {
		t.Error("no outputs at all: want an error naming make bench-quick")
	}
}

func TestUpdateSection(t *testing.T) {
	p := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	os.WriteFile(p, []byte("# Benchmarks\n\nprose\n"), 0o644)
	for i := 0; i < 2; i++ { // the second run replaces, never duplicates
		if err := updateSection(p, "| table |\n"); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(p)
	if strings.Count(string(b), sectionBegin) != 1 || !strings.Contains(string(b), "prose") {
		t.Fatalf("section not replaced in place:\n%s", b)
	}
}

func TestCoveredRows(t *testing.T) {
	p := filepath.Join(t.TempDir(), "PERFORMANCE.md")
	os.WriteFile(p, []byte("| area | what | target | baseline |\n|---|---|---|---|\n| plugins | plugin cold start (launch) | x | y |\n| gpu | tokens per second | x | y |\n"), 0o644)
	missing, err := uncoveredRows(p)
	if err != nil || len(missing) != 1 || !strings.HasPrefix(missing[0], "gpu") {
		t.Fatalf("missing = %v, %v; want only the gpu row", missing, err)
	}
}

// TestSummaryRunWithErrors: a gateway run where the rate limiter refused
// most requests (the saved output of such a run: 12,455 errors of 16,134)
// is a failure to measure, not a figure; rows without errors still count.
func TestSummaryRunWithErrors(t *testing.T) {
	s, err := build("testdata/errors", filepath.Join(t.TempDir(), "none"), "quick")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]measure{}
	for _, m := range s.Measures {
		got[m.Name] = m
	}
	for _, name := range []string{"gateway_added_p50_ms_c64", "gateway_added_p99_ms_c64", "gateway_throughput_rps_c64", "gateway_ttft_added_p50_ms_c64"} {
		m := got[name]
		if m.Value != nil || m.Met || !strings.Contains(m.Failed, "errors") {
			t.Errorf("%s: value %v met %v failed %q, want no value, not met, failed naming the errors", name, m.Value, m.Met, m.Failed)
		}
	}
	if m := got["gateway_ttft_added_p50_ms_c1"]; m.Value == nil || *m.Value != 1.96 || m.Failed != "" {
		t.Errorf("c1 streaming had no errors: value %v failed %q, want 1.96", m.Value, m.Failed)
	}
	if f := failures(s); len(f) != 4 {
		t.Errorf("failures: %q, want the four measures of the failed rows", f)
	}
	if table := markdown(s); !strings.Contains(table, "| gateway_added_p50_ms_c64 | failed to measure |") {
		t.Errorf("table does not say failed to measure:\n%s", table)
	}
}

// TestSummaryLoadgenFailedRow: loadgen's own "failed: N errors of M
// requests" row, and a failed direct baseline, leave no figure.
func TestSummaryLoadgenFailedRow(t *testing.T) {
	text := "# rounds=1 duration=2s concurrency=64 response≈1 KB\n" +
		"| target | mode | p50 ms | p99 ms | added p50 ms | added p99 ms | TTFT p50 ms | added TTFT p50 ms | req/s | errors | gateway's own overhead p50/p99 ms |\n" +
		"|---|---|---|---|---|---|---|---|---|---|---|\n" +
		"| direct | unary | 2.93 | 13.79 | — | — | — | — | 17739 | 0 | — |\n" +
		"| nemoclave | unary | failed: 3 errors of 4000 requests, e.g. status 429 | | | | | | | | |\n" +
		"| direct | stream | failed: 5 errors of 900 requests, e.g. EOF | | | | | | | | |\n" +
		"| nemoclave | stream | 4.11 | 9.17 | +3.50 | +7.32 | 2.20 | +1.96 | 227 | 0 | 0.104 / 0.448 |\n"
	out := parseInference(text)
	if r := out["gateway_added_p50_ms_c64"]; r.Value != nil || !strings.Contains(r.Failed, "3 errors of 4000") {
		t.Errorf("unary: %+v, want failed with loadgen's text", r)
	}
	if r := out["gateway_ttft_added_p50_ms_c64"]; r.Value != nil || !strings.Contains(r.Failed, "direct baseline") {
		t.Errorf("stream: %+v, want failed because the direct baseline failed", r)
	}
}
