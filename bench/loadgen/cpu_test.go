package main

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseProcs(t *testing.T) {
	pid := os.Getpid()
	p, err := parseProcs(" self=" + strconv.Itoa(pid) + ",")
	if err != nil || len(p) != 1 || p[0].name != "self" || p[0].pid != pid {
		t.Fatalf("parseProcs = %v, %v", p, err)
	}
	for _, bad := range []string{"plugin=", "=12", "router", "x=abc", "x=-3"} {
		if _, err := parseProcs(bad); err == nil || !strings.Contains(err.Error(), "want name=pid") {
			t.Errorf("parseProcs(%q): %v, want an error saying name=pid", bad, err)
		}
	}
	if _, err := parseProcs("gone=999999999"); err == nil {
		t.Error("a process that does not exist must be refused, not reported as 0 µs")
	}
}

// TestCPUPerRequest: CPU this process burns shows in its /proc stat (the
// counter loadgen reads for the other processes) and in the per-request
// figure. The loop runs until 200 ms of CPU time were spent, however long
// that takes on a loaded machine.
func TestCPUPerRequest(t *testing.T) {
	procs := []proc{{"self", os.Getpid()}}
	before := cpuSample(procs)
	start := selfCPU()
	for selfCPU()-start < 200*time.Millisecond {
	}
	after := cpuSample(procs)
	got := cpuPerRequest(procs, before, after, 10)
	// 200 ms over 10 requests is 20,000 µs each; /proc's 10 ms ticks and
	// the test's other threads make it inexact, never below half.
	if got["self"] < 10_000 || got["loadgen"] < 10_000 {
		t.Errorf("cpu per request %v, want ≥ 10,000 µs for self and loadgen after 200 ms of CPU", got)
	}
	if cpuPerRequest(procs, before, after, 0) != nil {
		t.Error("no requests: want no figure")
	}
}
