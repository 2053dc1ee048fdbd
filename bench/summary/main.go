// Command summary turns the outputs bench/run.sh saved under bench/out/ into
// bench/out/summary.json: one entry per performance target with our value,
// each peer's value, the ratio to the named peer, the target, whether it is
// met, and the load average while it was measured; for each target not met,
// what was tried, what was measured and what would be needed (missed.json);
// a figure taken at a smaller scale than its target is not compared with it.
// It can also rewrite the generated section of BENCHMARKS.md from that file,
// so the prose tables and the data never disagree.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// measure is one entry of summary.json.
type measure struct {
	Name    string             `json:"name"`
	Row     string             `json:"row"`
	Value   *float64           `json:"value"`
	Unit    string             `json:"unit"`
	Peers   map[string]float64 `json:"peers,omitempty"`
	Ratio   *float64           `json:"ratio"`
	RatioTo string             `json:"ratio_to,omitempty"`
	Target  float64            `json:"target"`
	Better  string             `json:"better"`
	Met     bool               `json:"met"`
	Load    *float64           `json:"load"`
	Extra   map[string]any     `json:"extra,omitempty"`
	Note    string             `json:"note,omitempty"`
	// Failed says why a benchmark that ran measured nothing for this
	// entry (a run with errors); value is then null and met false.
	Failed string `json:"failed,omitempty"`
	// OffScale says why the value is not compared with the target: it
	// was measured at a smaller scale than the target is stated for (a
	// quick run's store). met is then false.
	OffScale string `json:"off_scale,omitempty"`
	// NotMet is, for a target not met, what was tried, what was measured
	// and what would close the gap (bench/summary/missed.json).
	NotMet *missedEntry `json:"not_met,omitempty"`
	Source string       `json:"source"`
}

type summary struct {
	Date     string    `json:"date"`
	Mode     string    `json:"mode"`
	Machine  machine   `json:"machine"`
	Measures []measure `json:"measures"`
}

type machine struct {
	Cores  int    `json:"cores"`
	Kernel string `json:"kernel"`
	CPU    string `json:"cpu"`
}

// areas maps each bench script's saved output to its parser.
var areas = []struct {
	file  string
	parse func(string) map[string]raw
}{
	{"sandbox.txt", parseSandbox},
	{"inference.txt", parseInference},
	{"egress.txt", parseEgress},
	{"plugins.txt", parsePlugins},
	{"stores.txt", parseStores},
	{"runtime.txt", parseRuntime},
}

func main() {
	dir := flag.String("dir", "bench/out", "directory holding the saved outputs of bench/<area>.sh")
	bin := flag.String("bin", "bin/nemoclave", "the default local binary, for the footprint row")
	mode := flag.String("mode", "full", "full or quick, recorded in the file")
	out := flag.String("o", "", "where to write summary.json (default <dir>/summary.json)")
	benchmarks := flag.String("update-benchmarks", "", "rewrite the generated section of this BENCHMARKS.md")
	perf := flag.String("check-targets", "", "a performance targets table (markdown) whose every row must have a measure")
	flag.Parse()
	if *out == "" {
		*out = filepath.Join(*dir, "summary.json")
	}
	if *perf != "" {
		if missing, err := uncoveredRows(*perf); err != nil {
			fmt.Fprintln(os.Stderr, "bench/summary:", err)
			os.Exit(1)
		} else if len(missing) > 0 {
			fmt.Fprintf(os.Stderr, "bench/summary: rows of %s with no measure (add them to bench/summary/targets.go):\n  %s\n", *perf, strings.Join(missing, "\n  "))
			os.Exit(1)
		}
	}
	s, err := build(*dir, *bin, *mode)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/summary:", err)
		os.Exit(1)
	}
	data, _ := json.MarshalIndent(s, "", "  ")
	if err := os.WriteFile(*out, append(data, '\n'), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "bench/summary:", err)
		os.Exit(1)
	}
	table := markdown(s)
	fmt.Print(table)
	if *benchmarks != "" {
		if err := updateSection(*benchmarks, table); err != nil {
			fmt.Fprintln(os.Stderr, "bench/summary:", err)
			os.Exit(1)
		}
	}
	if failed := failures(s); len(failed) > 0 {
		fmt.Fprintf(os.Stderr, "bench/summary: failed to measure:\n  %s\n", strings.Join(failed, "\n  "))
		os.Exit(1)
	}
}

// failures lists the measures whose benchmark ran but measured nothing.
func failures(s summary) []string {
	var out []string
	for _, m := range s.Measures {
		if m.Failed != "" {
			out = append(out, m.Name+": "+m.Failed)
		}
	}
	return out
}

func build(dir, bin, mode string) (summary, error) {
	s := summary{Date: time.Now().UTC().Format(time.RFC3339), Mode: mode, Machine: host()}
	found := map[string]raw{}
	source := map[string]string{}
	loads := map[string]float64{}
	read := 0
	for _, a := range areas {
		data, err := os.ReadFile(filepath.Join(dir, a.file))
		if os.IsNotExist(err) {
			continue
		} else if err != nil {
			return s, err
		}
		read++
		text := string(data)
		for name, r := range a.parse(text) {
			found[name] = r
			source[name] = a.file
			loads[name] = parseLoad(text)
		}
	}
	if read == 0 {
		return s, fmt.Errorf("no bench output in %s: run `make bench-quick` or `make bench` first", dir)
	}
	if fi, err := os.Stat(bin); err == nil {
		found["binary_size_mb"] = raw{Value: num(float64(fi.Size()) / 1e6), Extra: map[string]any{"path": bin}}
		source["binary_size_mb"] = bin
	}
	for _, t := range targets {
		m := measure{Name: t.Name, Row: t.Row, Unit: t.Unit, Target: t.Target, Better: t.Better, RatioTo: t.RatioTo, Note: t.Note}
		r, ok := found[t.Name]
		if !ok {
			m.Note = strings.TrimSpace(m.Note + "; not measured in this run")
			s.Measures = append(s.Measures, m)
			continue
		}
		m.Value, m.Peers, m.Extra, m.Source, m.Failed = r.Value, r.Peers, r.Extra, source[t.Name], r.Failed
		if r.Failed != "" {
			m.Value = nil
		}
		if r.Note != "" {
			m.Note = strings.TrimPrefix(m.Note+"; "+r.Note, "; ")
		}
		if l, ok := loads[t.Name]; ok && !math.IsNaN(l) {
			m.Load = num(math.Round(l*100) / 100)
		}
		if p, ok := r.Peers[t.RatioTo]; ok && t.RatioTo != "" && p != 0 && m.Value != nil {
			m.Ratio = num(*m.Value / p)
		}
		if t.Name == "sandbox_create_exec_exit_ratio_bwrap" && m.Value != nil {
			m.Ratio = num(*m.Value)
		}
		m.OffScale = offScale(t, m)
		m.Met = m.OffScale == "" && met(t, m)
		s.Measures = append(s.Measures, m)
	}
	for i := range s.Measures {
		if !s.Measures[i].Met {
			s.Measures[i].NotMet = missedFor(s.Measures[i].Name)
		}
	}
	return s, nil
}

// offScale says why a value taken at a smaller scale than its target's
// cannot be compared with it ("" when the scale matches or the target
// names none).
func offScale(t target, m measure) string {
	if t.Scale == nil || m.Value == nil {
		return ""
	}
	n, ok := m.Extra[t.Scale.Key].(float64)
	if !ok {
		return fmt.Sprintf("the run does not say how many %s it measured; the target is for %.0f", t.Scale.What, t.Scale.Min)
	}
	if n < t.Scale.Min {
		return fmt.Sprintf("measured at %.0f %s; the target is for %.0f, so this figure is not compared with it", n, t.Scale.What, t.Scale.Min)
	}
	return ""
}

// met compares the value with the target, plus the conditions some rows add
// to the threshold (recall, a peer that must be beaten, no leaks).
func met(t target, m measure) bool {
	if m.Value == nil {
		return false
	}
	v := *m.Value
	ok := v <= t.Target
	if t.Better == "higher" {
		ok = v >= t.Target
	}
	switch t.Name {
	case "egress_bulk_pct_of_direct":
		if s, has := m.Peers["squid"]; has && v < s {
			ok = false
		}
	case "retrieval_exact_p50_ms":
		if rec, _ := m.Extra["recall"].(float64); rec < 1 {
			ok = false
		}
	case "retrieval_approx_p50_ms":
		if rec, _ := m.Extra["recall"].(float64); rec < 0.95 {
			ok = false // the scale (1M vectors) is checked by offScale
		}
	case "sandbox_concurrent50_p99_ms":
		if l, _ := m.Extra["leaks"].(string); !strings.HasPrefix(l, "none") {
			ok = false
		}
	}
	return ok
}

func host() machine {
	m := machine{Cores: runtime.NumCPU()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}
