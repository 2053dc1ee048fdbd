package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// raw is what one area's output says about one measure, before targets.
type raw struct {
	Value *float64
	Peers map[string]float64
	Extra map[string]any
	Note  string
	// Failed says why this measure has no value although its benchmark
	// ran (say, the run had errors): a failure to measure, which makes
	// bench/summary exit non-zero.
	Failed string
}

func num(v float64) *float64 { return &v }

// parseDuration reads "14.62 ms", "236 µs", "0.5 s" into the given unit.
func parseDuration(s, unit string) (float64, bool) {
	f := strings.Fields(strings.TrimSpace(s))
	if len(f) != 2 {
		return 0, false
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 0, false
	}
	scale := map[string]float64{"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1}
	from, ok1 := scale[f[1]]
	to, ok2 := scale[unit]
	if !ok1 || !ok2 {
		return 0, false
	}
	return v * from / to, true
}

// cells splits a markdown table row into trimmed cells ("| a | b |" → a, b).
func cells(line string) []string {
	line = strings.TrimSpace(line)
	if !strings.HasPrefix(line, "|") {
		return nil
	}
	parts := strings.Split(strings.Trim(line, "|"), "|")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

// parseSandbox reads bench/sandbox.sh's output (TestSandboxBench).
func parseSandbox(text string) map[string]raw {
	out := map[string]raw{}
	medians := map[string]float64{}
	for _, line := range strings.Split(text, "\n") {
		c := cells(line)
		if len(c) < 4 {
			continue
		}
		med, ok := parseDuration(c[2], "ms")
		if !ok {
			continue
		}
		switch {
		case strings.HasPrefix(c[0], "nemoclave"):
			medians["nemoclave"] = med
		case strings.HasPrefix(c[0], "plain fork"):
			medians["fork_exec"] = med
		case strings.HasPrefix(c[0], "bwrap"):
			medians["bwrap"] = med
		}
	}
	if ours, ok := medians["nemoclave"]; ok {
		peers := map[string]float64{}
		for k, v := range medians {
			if k != "nemoclave" {
				peers[k] = v
			}
		}
		out["sandbox_create_exec_exit_p50_ms"] = raw{Value: num(ours), Peers: peers}
		if b, ok := medians["bwrap"]; ok && b > 0 {
			out["sandbox_create_exec_exit_ratio_bwrap"] = raw{Value: num(ours / b), Peers: map[string]float64{"bwrap_ms": b, "nemoclave_ms": ours}}
		}
	}
	re := regexp.MustCompile(`time to ready min ([0-9.]+ \S+), median ([0-9.]+ \S+), p99 ([0-9.]+ \S+)`)
	if m := re.FindStringSubmatch(text); m != nil {
		if p99, ok := parseDuration(m[3], "ms"); ok {
			r := raw{Value: num(p99), Extra: map[string]any{}}
			if leak := regexp.MustCompile(`leaks after delete: (.*)`).FindStringSubmatch(text); leak != nil {
				r.Extra["leaks"] = strings.TrimSpace(leak[1])
			}
			out["sandbox_concurrent50_p99_ms"] = r
		}
	}
	return out
}

// inferenceRow is one row of bench/inference.sh's loadgen table.
type inferenceRow struct {
	target, mode                       string
	addedP50, addedP99, addedTTFT, rps float64
	hasAddedP50, hasAddedTTFT, hasRPS  bool
	// failed is why the row measured nothing: loadgen's "failed: …"
	// text, or the error count of a row that had any errors.
	failed string
}

func signed(s string) (float64, bool) {
	v, err := strconv.ParseFloat(strings.TrimPrefix(s, "+"), 64)
	return v, err == nil
}

// parseInference reads bench/inference.sh's output: one loadgen table per
// concurrency, announced by a "# rounds=… concurrency=N" line. A row with
// any errors is a failure to measure, never a figure: the requests that
// got through a mostly refused run (a rate limiter answering 429) say
// nothing about the gateway.
func parseInference(text string) map[string]raw {
	rows := map[int][]inferenceRow{}
	conc := 0
	reConc := regexp.MustCompile(`concurrency=(\d+)`)
	// cpu[conc][target/mode] is loadgen -cpu's table: each process's CPU
	// time per request, in µs, by column name.
	cpu := map[int]map[string]map[string]float64{}
	var cpuCols []string
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "#") {
			if m := reConc.FindStringSubmatch(line); m != nil {
				conc, _ = strconv.Atoi(m[1])
			}
			cpuCols = nil
			continue
		}
		if strings.HasPrefix(line, "CPU per request") {
			cpuCols = []string{}
			continue
		}
		if cpuCols != nil {
			c := cells(line)
			switch {
			case len(c) < 3 || strings.HasPrefix(c[0], "---"):
			case c[0] == "target":
				cpuCols = c
			default:
				row := map[string]float64{}
				for i := 2; i < len(c) && i < len(cpuCols); i++ {
					if v, err := strconv.ParseFloat(c[i], 64); err == nil {
						row[cpuCols[i]] = v
					}
				}
				if cpu[conc] == nil {
					cpu[conc] = map[string]map[string]float64{}
				}
				cpu[conc][c[0]+"/"+c[1]] = row
			}
			continue
		}
		c := cells(line)
		if len(c) < 3 || c[0] == "target" || strings.HasPrefix(c[0], "---") {
			continue
		}
		r := inferenceRow{target: c[0], mode: c[1]}
		switch {
		case strings.HasPrefix(c[2], "failed"):
			r.failed = c[2]
		case len(c) < 10:
			continue
		default:
			if n, err := strconv.Atoi(c[9]); err != nil || n != 0 {
				r.failed = "failed: " + c[9] + " errors"
				break
			}
			r.addedP50, r.hasAddedP50 = signed(c[4])
			r.addedP99, _ = signed(c[5])
			r.addedTTFT, r.hasAddedTTFT = signed(c[7])
			r.rps, r.hasRPS = signed(c[8])
		}
		rows[conc] = append(rows[conc], r)
	}
	find := func(conc int, target, mode string) (inferenceRow, bool) {
		for _, r := range rows[conc] {
			if r.target == target && r.mode == mode {
				return r, true
			}
		}
		return inferenceRow{}, false
	}
	// ours is nemoclave's row, or a raw saying why it was not measured
	// (its own failure, or the direct baseline's, which every added
	// figure is relative to).
	ours := func(conc int, mode string) (inferenceRow, raw, bool) {
		n, ok := find(conc, "nemoclave", mode)
		if !ok {
			return n, raw{}, false
		}
		if n.failed != "" {
			return n, raw{Failed: fmt.Sprintf("nemoclave %s at concurrency %d %s", mode, conc, n.failed)}, false
		}
		if d, ok := find(conc, "direct", mode); ok && d.failed != "" {
			return n, raw{Failed: fmt.Sprintf("the direct baseline (%s, concurrency %d) %s", mode, conc, d.failed)}, false
		}
		return n, raw{}, true
	}
	peerNote := func(conc int, peer, mode string) string {
		if p, ok := find(conc, peer, mode); ok && p.failed != "" {
			return fmt.Sprintf("%s %s: %s, no figure", peer, mode, p.failed)
		}
		return ""
	}
	out := map[string]raw{}
	if n, bad, ok := ours(64, "unary"); !ok {
		if bad.Failed != "" {
			out["gateway_added_p50_ms_c64"], out["gateway_added_p99_ms_c64"], out["gateway_throughput_rps_c64"] = bad, bad, bad
		}
	} else {
		if n.hasAddedP50 {
			p50 := raw{Value: num(n.addedP50), Peers: map[string]float64{}, Note: peerNote(64, "portkey", "unary")}
			p99 := raw{Value: num(n.addedP99), Peers: map[string]float64{}, Note: p50.Note}
			if p, ok := find(64, "portkey", "unary"); ok && p.hasAddedP50 {
				p50.Peers["portkey"] = p.addedP50
				p99.Peers["portkey"] = p.addedP99
			}
			out["gateway_added_p50_ms_c64"] = p50
			out["gateway_added_p99_ms_c64"] = p99
		}
		if n.hasRPS {
			r := raw{Value: num(n.rps), Peers: map[string]float64{}, Note: peerNote(64, "portkey", "unary")}
			for _, peer := range []string{"direct", "portkey"} {
				if p, ok := find(64, peer, "unary"); ok && p.hasRPS {
					r.Peers[peer] = p.rps
				}
			}
			// CPU per request of every process on each path, and the
			// throughput ceiling it allows on this machine's cores.
			for _, t := range []struct{ key, name string }{{"nemoclave/unary", "cpu_us_per_request"}, {"direct/unary", "direct_cpu_us_per_request"}, {"portkey/unary", "portkey_cpu_us_per_request"}} {
				if row, ok := cpu[64][t.key]; ok {
					if r.Extra == nil {
						r.Extra = map[string]any{}
					}
					r.Extra[t.name] = row
				}
			}
			out["gateway_throughput_rps_c64"] = r
		}
	}
	for _, c := range []int{1, 64} {
		name := fmt.Sprintf("gateway_ttft_added_p50_ms_c%d", c)
		n, bad, ok := ours(c, "stream")
		if !ok {
			if bad.Failed != "" {
				out[name] = bad
			}
			continue
		}
		if n.hasAddedTTFT {
			r := raw{Value: num(n.addedTTFT), Peers: map[string]float64{}}
			if p, ok := find(c, "portkey", "stream"); ok && p.hasAddedTTFT {
				r.Peers["portkey"] = p.addedTTFT
			} else {
				r.Note = "portkey: streaming fails in Portkey itself (every request answered 500), no figure"
			}
			out[name] = r
		}
	}
	return out
}

// parseEgress reads the "json: {…}" line bench/egress printed last.
func parseEgress(text string) map[string]raw {
	out := map[string]raw{}
	var j struct {
		Latency    map[string]float64 `json:"latency_median_us"`
		Throughput map[string]float64 `json:"throughput_median_mibs"`
		// CPU time of each path's processes (client, upstream, proxy)
		// per CONNECT setup and per MiB relayed, in µs.
		CPUConnect map[string]map[string]float64 `json:"cpu_per_connect_us"`
		CPUMiB     map[string]map[string]float64 `json:"cpu_per_mib_us"`
	}
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(line, "json: "); ok {
			if err := json.Unmarshal([]byte(rest), &j); err != nil {
				return out
			}
		}
	}
	if d, ok := j.Latency["direct"]; ok {
		if n, ok := j.Latency["nemoclave"]; ok {
			r := raw{Value: num(n - d), Peers: map[string]float64{}}
			if s, ok := j.Latency["squid"]; ok {
				r.Peers["squid"] = s - d
			}
			if s, ok := j.Latency["bare relay, splice (diagnostic)"]; ok {
				r.Peers["bare_relay"] = s - d
			}
			if len(j.CPUConnect) > 0 {
				r.Extra = map[string]any{"cpu_us_per_connect": j.CPUConnect}
			}
			out["egress_connect_added_p50_us"] = r
		}
	}
	if d, ok := j.Throughput["direct"]; ok && d > 0 {
		if n, ok := j.Throughput["nemoclave"]; ok {
			r := raw{Value: num(100 * n / d), Peers: map[string]float64{}, Extra: map[string]any{"direct_mib_s": d, "nemoclave_mib_s": n}}
			if s, ok := j.Throughput["squid"]; ok {
				r.Peers["squid"] = 100 * s / d
			}
			// The least a CONNECT relay can do, in the same run: what the
			// extra loopback hop alone leaves of direct.
			if s, ok := j.Throughput["bare relay, splice (diagnostic)"]; ok {
				r.Peers["bare_relay"] = 100 * s / d
			}
			if len(j.CPUMiB) > 0 {
				r.Extra["cpu_us_per_mib"] = j.CPUMiB
			}
			out["egress_bulk_pct_of_direct"] = r
		}
	}
	return out
}

// benchLines collects `go test -bench` result lines: benchmark name (without
// "Benchmark" and the -GOMAXPROCS suffix) → unit → every reported value.
func benchLines(text string) map[string]map[string][]float64 {
	res := map[string]map[string][]float64{}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	suffix := regexp.MustCompile(`-\d+$`)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := suffix.ReplaceAllString(strings.TrimPrefix(f[0], "Benchmark"), "")
		if res[name] == nil {
			res[name] = map[string][]float64{}
		}
		for i := 2; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				res[name][f[i+1]] = append(res[name][f[i+1]], v)
			}
		}
	}
	return res
}

func median(v []float64) (float64, bool) {
	if len(v) == 0 {
		return 0, false
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2], true
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2, true
}

// parsePlugins reads bench/plugins.sh's output (host/plugins benchmarks).
func parsePlugins(text string) map[string]raw {
	b := benchLines(text)
	out := map[string]raw{}
	if alt := b["EmbedRoundTripAlternating"]; alt != nil {
		if p, ok := median(alt["plugin-p50-ns"]); ok {
			r := raw{Value: num(p / 1e3), Peers: map[string]float64{}}
			if in, ok := median(alt["inproc-p50-ns"]); ok {
				r.Peers["in_process"] = in / 1e3
			}
			out["plugin_roundtrip_p50_us"] = r
		}
	}
	if cs := b["ColdStart/embeddings-hash"]; cs != nil {
		if p, ok := median(cs["p50-ns"]); ok {
			out["plugin_cold_start_p50_ms"] = raw{Value: num(p / 1e6), Extra: map[string]any{"plugin": "embeddings-hash"}}
		}
	}
	return out
}

// parseStores reads bench/stores.sh's output (retrieval and memory benchmarks).
func parseStores(text string) map[string]raw {
	b := benchLines(text)
	out := map[string]raw{}
	// size is the store's size as the run printed it; absent when it did
	// not, so the entry says so rather than "0 vectors".
	size := func(extra map[string]any) map[string]any {
		if m := regexp.MustCompile(`vectors: (\d+)`).FindStringSubmatch(text); m != nil {
			extra["vectors"], _ = strconv.ParseFloat(m[1], 64)
		}
		return extra
	}
	if ex := b["StoresRetrievalExact"]; ex != nil {
		if p, ok := median(ex["p50-ms"]); ok {
			r := raw{Value: num(p), Peers: map[string]float64{}, Extra: size(map[string]any{})}
			if bl, ok := median(ex["baseline-p50-ms"]); ok {
				r.Peers["plain_loop"] = bl
			}
			if rec, ok := median(ex["recall@10"]); ok {
				r.Extra["recall"] = rec
			}
			out["retrieval_exact_p50_ms"] = r
		}
	}
	if h := b["StoresRetrievalHNSW"]; h != nil {
		if p, ok := median(h["ef160-p50-ms"]); ok {
			r := raw{Value: num(p), Extra: size(map[string]any{"ef_search": 160})}
			if rec, ok := median(h["ef160-recall@10"]); ok {
				r.Extra["recall"] = rec
			}
			out["retrieval_approx_p50_ms"] = r
		}
	}
	if m := b["StoresMemoryRecall"]; m != nil {
		if p, ok := median(m["p50-ms"]); ok {
			r := raw{Value: num(p), Extra: map[string]any{}}
			if n, ok := median(m["memories"]); ok {
				r.Extra["memories"] = n
			}
			out["memory_recall_10k_p50_ms"] = r
		}
	}
	return out
}

// parseRuntime reads bench/runtime.sh's output.
func parseRuntime(text string) map[string]raw {
	out := map[string]raw{}
	stat := regexp.MustCompile(`min (\d+)\s+median (\d+)\s+p99 (\d+)`)
	for _, line := range strings.Split(text, "\n") {
		var name string
		switch {
		case strings.HasPrefix(line, "cold"):
			name = "run_cold_ms"
		case strings.HasPrefix(line, "warm"):
			name = "run_warm_ms"
		default:
			continue
		}
		if m := stat.FindStringSubmatch(line); m != nil {
			med, _ := strconv.ParseFloat(m[2], 64)
			out[name] = raw{Value: num(med)}
		}
	}
	tree := regexp.MustCompile(`tree RSS: (\d+) MiB \(daemon (\d+), plugins (\d+), sandbox init (\d+), agents (\d+)\)`)
	if m := tree.FindStringSubmatch(text); m != nil {
		v, _ := strconv.ParseFloat(m[1], 64)
		extra := map[string]any{}
		for i, k := range []string{"daemon_mib", "plugins_mib", "sandbox_init_mib", "agents_mib"} {
			x, _ := strconv.ParseFloat(m[i+2], 64)
			extra[k] = x
		}
		if m := regexp.MustCompile(`tree PSS: (\d+) MiB`).FindStringSubmatch(text); m != nil {
			extra["pss_mib"], _ = strconv.ParseFloat(m[1], 64)
		}
		out["rss_10_idle_sandboxes_mib"] = raw{Value: num(v), Extra: extra}
	}
	return out
}

// parseLoad returns the mean one-minute load average of the "load-start:" and
// "load-end:" lines bench/run.sh wrote around an area's run.
func parseLoad(text string) float64 {
	var sum float64
	n := 0
	for _, line := range strings.Split(text, "\n") {
		for _, p := range []string{"load-start: ", "load-end: "} {
			if rest, ok := strings.CutPrefix(line, p); ok {
				f := strings.Fields(rest)
				if len(f) > 0 {
					if v, err := strconv.ParseFloat(f[0], 64); err == nil {
						sum += v
						n++
					}
				}
			}
		}
	}
	if n == 0 {
		return math.NaN()
	}
	return sum / float64(n)
}
