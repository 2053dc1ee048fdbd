package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is one process whose CPU time per request loadgen reports.
type proc struct {
	name string
	pid  int
}

// parseProcs reads -cpu's "name=pid,name=pid".
func parseProcs(s string) ([]proc, error) {
	var out []proc
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		name, pid, ok := strings.Cut(f, "=")
		n, err := strconv.Atoi(pid)
		if !ok || err != nil || n <= 0 || name == "" {
			return nil, fmt.Errorf("%q: want name=pid", f)
		}
		if _, err := procCPU(n); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out = append(out, proc{name, n})
	}
	return out, nil
}

// clockTick is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on
// every Linux architecture Go supports.
const clockTick = 100

// procCPU is a process's user+sys time over all its threads, live and
// exited (fields 14 and 15 of /proc/<pid>/stat).
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: count after its ')'.
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * time.Second / clockTick, nil
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuSample reads every watched process's CPU time, and loadgen's own.
func cpuSample(procs []proc) map[string]time.Duration {
	if len(procs) == 0 {
		return nil
	}
	out := map[string]time.Duration{"loadgen": selfCPU()}
	for _, p := range procs {
		if d, err := procCPU(p.pid); err == nil {
			out[p.name] = d
		}
	}
	return out
}

// cpuPerRequest is each process's CPU time between two samples per
// request, in µs.
func cpuPerRequest(procs []proc, before, after map[string]time.Duration, requests int) map[string]float64 {
	if len(procs) == 0 || requests == 0 {
		return nil
	}
	out := map[string]float64{}
	for name, a := range after {
		if b, ok := before[name]; ok {
			out[name] = float64((a - b).Nanoseconds()) / 1e3 / float64(requests)
		}
	}
	return out
}

// summariseCPU prints, per target and mode, the median over rounds of each
// process's CPU per request, their sum, and the throughput that sum allows
// on this machine's cores: with every core busy on this path and nothing
// else, cores / (CPU per request). At conc closed-loop clients, Little's
// law turns that ceiling into the lowest p50 it allows: conc / ceiling.
func summariseCPU(all []Result, targets []Target, procs []proc, conc int) {
	names := []string{"loadgen"}
	for _, p := range procs {
		names = append(names, p.name)
	}
	cores := runtime.NumCPU()
	fmt.Printf("\nCPU per request, µs (user+sys from /proc/<pid>/stat at %d Hz, median over rounds; ceiling = %d cores / total; latency floor = %d clients / ceiling):\n\n", clockTick, cores, conc)
	fmt.Printf("| target | mode | req/s | %s | total | ceiling req/s | latency floor ms |\n", strings.Join(names, " | "))
	fmt.Printf("|---|---|---|%s---|---|---|\n", strings.Repeat("---|", len(names)))
	for _, mode := range []string{"unary", "stream"} {
		for _, t := range targets {
			var rps []float64
			per := map[string][]float64{}
			for _, r := range all {
				if r.Target != t.Name || r.Mode != mode || r.CPUus == nil {
					continue
				}
				rps = append(rps, r.RPS)
				for k, v := range r.CPUus {
					per[k] = append(per[k], v)
				}
			}
			if len(rps) == 0 {
				continue
			}
			var cells []string
			total := 0.0
			for _, n := range names {
				m := median(per[n])
				total += m
				cells = append(cells, fmt.Sprintf("%.0f", m))
			}
			sort.Float64s(rps)
			ceiling := float64(cores) * 1e6 / total
			fmt.Printf("| %s | %s | %.0f | %s | %.0f | %.0f | %.2f |\n", t.Name, mode, median(rps), strings.Join(cells, " | "), total, ceiling, 1e3*float64(conc)/ceiling)
		}
	}
}
