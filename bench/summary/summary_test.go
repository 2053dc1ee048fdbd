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

// TestMissedEntries: every target has an entry in missed.json saying what
// was tried, what was measured and what would be needed, so a run that
// misses any target explains it; and no entry names a target that does not
// exist (a renamed measure would otherwise lose its entry unnoticed).
func TestMissedEntries(t *testing.T) {
	names := map[string]bool{}
	for _, tg := range targets {
		names[tg.Name] = true
		e, ok := missed[tg.Name]
		if !ok {
			t.Errorf("%s: no entry in missed.json", tg.Name)
			continue
		}
		if strings.TrimSpace(e.Tried) == "" || strings.TrimSpace(e.Measured) == "" || strings.TrimSpace(e.Needed) == "" {
			t.Errorf("%s: entry lacks tried, measured or needed: %+v", tg.Name, e)
		}
	}
	for name := range missed {
		if !names[name] {
			t.Errorf("missed.json names %q, which is no target in targets.go", name)
		}
	}
}

// TestSummaryNotMet: every measure not met carries its missed.json entry
// into summary.json and the generated section; a met one carries none.
func TestSummaryNotMet(t *testing.T) {
	s, err := build("testdata/out", filepath.Join(t.TempDir(), "absent"), "full")
	if err != nil {
		t.Fatal(err)
	}
	table := markdown(s)
	if !strings.Contains(table, "### Missed targets: what was tried and what is needed") {
		t.Fatalf("no missed-targets section:\n%s", table)
	}
	for _, m := range s.Measures {
		switch {
		case m.Met && m.NotMet != nil:
			t.Errorf("%s is met but has a not_met entry", m.Name)
		case !m.Met && (m.NotMet == nil || m.NotMet.Needed == ""):
			t.Errorf("%s is not met and says nothing of what is needed: %+v", m.Name, m.NotMet)
		case !m.Met && !strings.Contains(table, "- **"+m.Name+"**"):
			t.Errorf("%s is not met and missing from the section", m.Name)
		}
	}
	if e := missedFor("no_such_measure"); e == nil || !strings.Contains(e.Needed, "missed.json") {
		t.Errorf("an unknown measure's entry must say it is missing: %+v", e)
	}
}

// TestSummaryQuickScale: a quick run's stores are smaller than the targets'
// (20k vectors, not 100k; 5k memories, not 10k). Fast as they are, such
// figures are not compared with the target: met is false and the entry
// says at which scale it was measured.
func TestSummaryQuickScale(t *testing.T) {
	dir := t.TempDir()
	text := "load-start: 1.00 1.00 1.00 1/100 1\nvectors: 20000\n" +
		"BenchmarkStoresRetrievalExact-2   \t       1\t 9000000000 ns/op\t        11.44 baseline-p50-ms\t        30.1 baseline-p99-ms\t         0.8760 p50-ms\t         3.1 p99-ms\t         1.000 recall@10\n" +
		"BenchmarkStoresRetrievalHNSW-2   \t       1\t 9000000000 ns/op\t         4.0 build-s\t         0.988 ef160-p50-ms\t        3.60 ef160-p99-ms\t         0.9960 ef160-recall@10\n" +
		"BenchmarkStoresMemoryRecall-2   \t       1\t 9000000000 ns/op\t      5000 memories\t         1.200 p50-ms\t        8.80 p99-ms\n" +
		"load-end: 1.00 1.00 1.00 1/100 1\n"
	if err := os.WriteFile(filepath.Join(dir, "stores.txt"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := build(dir, filepath.Join(dir, "absent"), "quick")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]measure{}
	for _, m := range s.Measures {
		got[m.Name] = m
	}
	for name, want := range map[string]string{
		"retrieval_exact_p50_ms":   "measured at 20000 vectors; the target is for 100000",
		"retrieval_approx_p50_ms":  "measured at 20000 vectors; the target is for 1000000",
		"memory_recall_10k_p50_ms": "measured at 5000 memories; the target is for 10000",
	} {
		m := got[name]
		if m.Value == nil || *m.Value >= m.Target {
			t.Fatalf("%s: value %v, want one under the target (the test is about scale)", name, m.Value)
		}
		if m.Met || !strings.Contains(m.OffScale, want) || m.NotMet == nil {
			t.Errorf("%s: met %v off_scale %q not_met %v; want not met, %q", name, m.Met, m.OffScale, m.NotMet, want)
		}
	}
	if table := markdown(s); !strings.Contains(table, "| retrieval_exact_p50_ms | 0.88 ms | plain_loop 11.4 | 0.08× plain_loop | ≤ 5.00 ms | n/a: smaller scale |") {
		t.Errorf("table does not say the scale differs:\n%s", table)
	}
	// At the target's scale the same figures are compared (and met).
	full := strings.Replace(strings.Replace(text, "vectors: 20000", "vectors: 100000", 1), "5000 memories", "10000 memories", 1)
	os.WriteFile(filepath.Join(dir, "stores.txt"), []byte(full), 0o644)
	s, _ = build(dir, filepath.Join(dir, "absent"), "full")
	for _, m := range s.Measures {
		if (m.Name == "retrieval_exact_p50_ms" || m.Name == "memory_recall_10k_p50_ms") && (!m.Met || m.OffScale != "") {
			t.Errorf("%s at full scale: met %v off_scale %q, want met", m.Name, m.Met, m.OffScale)
		}
	}
}

// TestSummaryInferenceCPU: loadgen -cpu's table (the real output of a run)
// goes into the throughput entry's extra, and its rows, which have as many
// cells as loadgen's main table, are never read as gateway figures.
func TestSummaryInferenceCPU(t *testing.T) {
	text := "# rounds=3 duration=5s concurrency=64 response≈1 KB\n" +
		"| target | mode | p50 ms | p99 ms | added p50 ms | added p99 ms | TTFT p50 ms | added TTFT p50 ms | req/s | errors | gateway's own overhead p50/p99 ms |\n" +
		"|---|---|---|---|---|---|---|---|---|---|---|\n" +
		"| direct | unary | 6.01 | 103.89 | — | — | — | — | 4398 | 0 | — |\n" +
		"| nemoclave | unary | 36.24 | 183.22 | +30.22 | +79.32 | — | — | 1403 | 0 | 0.019 / 4.942 |\n" +
		"| portkey | unary | 78.58 | 559.60 | +72.57 | +455.71 | — | — | 588 | 0 | — |\n" +
		"\nCPU per request, µs (user+sys from /proc/<pid>/stat at 100 Hz, median over rounds; ceiling = 2 cores / total; latency floor = 64 clients / ceiling):\n\n" +
		"| target | mode | req/s | loadgen | upstream | router | plugin | router-inprocess | portkey | total | ceiling req/s | latency floor ms |\n" +
		"|---|---|---|---|---|---|---|---|---|---|---|---|\n" +
		"| direct | unary | 4398 | 52 | 59 | 0 | 0 | 0 | 1 | 112 | 17828 | 3.59 |\n" +
		"| nemoclave | unary | 1403 | 81 | 82 | 235 | 202 | 1 | 1 | 603 | 3315 | 19.31 |\n" +
		"| portkey | unary | 588 | 177 | 98 | 0 | 3 | 3 | 927 | 1208 | 1656 | 38.65 |\n"
	out := parseInference(text)
	r := out["gateway_throughput_rps_c64"]
	if r.Value == nil || *r.Value != 1403 || r.Peers["portkey"] != 588 {
		t.Fatalf("throughput %v peers %v, want 1403 and portkey 588 (from the main table)", r.Value, r.Peers)
	}
	if p := out["gateway_added_p50_ms_c64"]; p.Value == nil || *p.Value != 30.22 || p.Failed != "" {
		t.Fatalf("added p50 %v failed %q, want 30.22", p.Value, p.Failed)
	}
	ours, _ := r.Extra["cpu_us_per_request"].(map[string]float64)
	pk, _ := r.Extra["portkey_cpu_us_per_request"].(map[string]float64)
	if ours["router"] != 235 || ours["plugin"] != 202 || ours["total"] != 603 || ours["ceiling req/s"] != 3315 || pk["portkey"] != 927 {
		t.Errorf("cpu extra: ours %v, portkey %v", ours, pk)
	}
}

// TestSummaryEgressCPU: bench/egress's CPU per CONNECT and per MiB of each
// path reach the entries' extra; the bare relay is the CONNECT row's peer.
func TestSummaryEgressCPU(t *testing.T) {
	text := `json: {"cpu_per_connect_us":{"direct":{"client":1207.3,"upstream":699.3,"proxy":0},"nemoclave":{"client":1997.5,"upstream":779.1,"proxy":1060.0},"squid":{"client":1523.8,"upstream":792.3,"proxy":856.5}},"cpu_per_mib_us":{"direct":{"client":229.7,"upstream":184.4,"proxy":0},"nemoclave":{"client":392.8,"upstream":276.2,"proxy":274.5}},"latency_median_us":{"bare relay, splice (diagnostic)":2043.6,"direct":1177.7,"nemoclave":2079.4,"squid":2148.9},"throughput_median_mibs":{"direct":2755.1,"nemoclave":1296.0}}`
	out := parseEgress(text)
	c := out["egress_connect_added_p50_us"]
	if c.Value == nil || math.Abs(*c.Value-901.7) > 1e-6 || math.Abs(c.Peers["bare_relay"]-865.9) > 1e-6 {
		t.Fatalf("connect: %v peers %v", c.Value, c.Peers)
	}
	if cpu, _ := c.Extra["cpu_us_per_connect"].(map[string]map[string]float64); cpu["nemoclave"]["proxy"] != 1060.0 || cpu["squid"]["proxy"] != 856.5 {
		t.Errorf("connect cpu extra: %v", c.Extra)
	}
	b := out["egress_bulk_pct_of_direct"]
	if cpu, _ := b.Extra["cpu_us_per_mib"].(map[string]map[string]float64); cpu["nemoclave"]["proxy"] != 274.5 || cpu["direct"]["client"] != 229.7 {
		t.Errorf("bulk cpu extra: %v", b.Extra)
	}
}

// TestSummaryScaleUnknown: a stores output that does not say its size is
// not compared either, and says why.
func TestSummaryScaleUnknown(t *testing.T) {
	out := parseStores("BenchmarkStoresRetrievalExact-2   \t       1\t 9000000000 ns/op\t         0.8760 p50-ms\t         1.000 recall@10\n")
	r := out["retrieval_exact_p50_ms"]
	m := measure{Value: r.Value, Extra: r.Extra}
	var tg target
	for _, x := range targets {
		if x.Name == "retrieval_exact_p50_ms" {
			tg = x
		}
	}
	if why := offScale(tg, m); !strings.Contains(why, "does not say how many vectors") {
		t.Errorf("offScale = %q, want it to say the size is unknown", why)
	}
}
