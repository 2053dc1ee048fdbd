package local

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/sandbox"
	"github.com/nemoclave/nemoclave/sandbox/confine"
)

// TestSandboxBench is the measurement behind bench/sandbox.sh and the
// "Sandbox" section of BENCHMARKS.md. It only runs when
// NEMOCLAVE_BENCH_SANDBOX is set (it is a measurement, not a test) and
// prints its table; it fails only when it cannot measure.
//
//   - create → start → agent exit → delete of /bin/true with every
//     protection on (namespaces, mounts, Landlock, seccomp, cgroups, the
//     three gateway listeners), alternating in one loop with plain
//     fork+exec of /bin/true and bwrap with equivalent namespaces;
//   - 50 sandboxes started concurrently: time until each is ready (Start
//     returned), then a check that no process, mount or cgroup leaked.
func TestSandboxBench(t *testing.T) {
	if os.Getenv("NEMOCLAVE_BENCH_SANDBOX") == "" {
		t.Skip("measurement; run bench/sandbox.sh (sets NEMOCLAVE_BENCH_SANDBOX=1)")
	}
	testSetup(t)
	rounds := 200
	if v, err := strconv.Atoi(os.Getenv("NEMOCLAVE_BENCH_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	dir := t.TempDir()
	ws := filepath.Join(dir, "ws")
	if err := os.Mkdir(ws, 0o755); err != nil {
		t.Fatal(err)
	}
	// The real path: the init stage the daemon uses (bench/sandbox.sh
	// builds it and passes it in), not this test binary.
	initExe := os.Getenv("NEMOCLAVE_BENCH_INIT")
	if initExe == "" {
		t.Log("NEMOCLAVE_BENCH_INIT unset: the test binary is the init stage, which the daemon never uses")
	}
	d, err := New(Config{StateRoot: filepath.Join(dir, "state"), Executable: initExe})
	if err != nil {
		t.Fatal(err)
	}
	pol := testPolicy()
	pol.Filesystem.ReadOnly = []string{"/usr", "/bin", "/lib", "/lib64", "/etc"}
	listeners := []sandbox.ListenerSpec{{Name: sandbox.ListenerEgress}, {Name: sandbox.ListenerInference}, {Name: sandbox.ListenerAgentAPI}}
	ctx := context.Background()
	n := 0
	// NEMOCLAVE_BENCH_INIT_B: a second init stage binary (say, one built
	// from an earlier commit) measured in the same loop, for before/after
	// comparisons of the init path under the same load.
	var dB *Driver
	if b := os.Getenv("NEMOCLAVE_BENCH_INIT_B"); b != "" {
		if dB, err = New(Config{StateRoot: filepath.Join(dir, "state-b"), Executable: b}); err != nil {
			t.Fatal(err)
		}
	}
	sandboxWith := func(d *Driver) (time.Duration, error) {
		n++
		name := fmt.Sprintf("bench-%d", n)
		t0 := time.Now()
		if _, err := d.Create(ctx, sandbox.Spec{Name: name, Command: []string{"/bin/true"}, Workspace: ws, Policy: pol, Listeners: listeners}); err != nil {
			return 0, err
		}
		st, err := d.Start(ctx, name)
		if err != nil {
			return 0, err
		}
		info, err := d.Wait(ctx, name)
		el := time.Since(t0)
		for _, l := range st.Listeners {
			l.Close()
		}
		if err == nil && info.ExitCode != 0 {
			err = fmt.Errorf("agent exit %d", info.ExitCode)
		}
		if derr := d.Delete(ctx, name); err == nil {
			err = derr
		}
		return el, err
	}
	oneSandbox := func() (time.Duration, error) { return sandboxWith(d) }
	forkExec := func() (time.Duration, error) {
		t0 := time.Now()
		err := exec.Command("/bin/true").Run()
		return time.Since(t0), err
	}
	bwrapPath, bwrapErr := exec.LookPath("bwrap")
	bwrap := func() (time.Duration, error) {
		t0 := time.Now()
		out, err := exec.Command(bwrapPath, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
			"--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib",
			"--symlink", "usr/lib64", "/lib64", "--ro-bind", "/etc", "/etc", "--proc", "/proc", "--dev", "/dev",
			"--tmpfs", "/tmp", "--bind", ws, "/workspace", "--chdir", "/workspace", "/bin/true").CombinedOutput()
		if err != nil {
			err = fmt.Errorf("bwrap: %v: %s", err, out)
		}
		return time.Since(t0), err
	}
	type series struct {
		name string
		fn   func() (time.Duration, error)
		d    []time.Duration
	}
	all := []*series{{name: "nemoclave local sandbox (all protections)", fn: oneSandbox}, {name: "plain fork+exec /bin/true", fn: forkExec}}
	if bwrapErr == nil {
		all = append(all, &series{name: "bwrap --unshare-all (same mounts)", fn: bwrap})
	}
	if dB != nil {
		all = append(all, &series{name: "comparison: init " + filepath.Base(os.Getenv("NEMOCLAVE_BENCH_INIT_B")), fn: func() (time.Duration, error) { return sandboxWith(dB) }})
	}
	for i := 0; i < rounds+10; i++ { // the first 10 rounds warm up
		for _, s := range all {
			el, err := s.fn()
			if err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			if i >= 10 {
				s.d = append(s.d, el)
			}
		}
	}
	fmt.Printf("\ncreate → exec → exit of /bin/true, %d rounds, A/B/C alternating in one loop, init stage %s\n", rounds, cmp.Or(initExe, "the test binary"))
	fmt.Printf("| %-42s | %9s | %9s | %9s |\n", "variant", "min", "median", "p99")
	fmt.Printf("|%s|%s|%s|%s|\n", strings.Repeat("-", 44), strings.Repeat("-", 11), strings.Repeat("-", 11), strings.Repeat("-", 11))
	for _, s := range all {
		mn, med, p99 := stats(s.d)
		fmt.Printf("| %-42s | %9s | %9s | %9s |\n", s.name, ms(mn), ms(med), ms(p99))
	}
	if bwrapErr != nil {
		fmt.Printf("bwrap not installed: %v\n", bwrapErr)
	} else {
		_, a, _ := stats(all[0].d)
		_, b, _ := stats(all[2].d)
		fmt.Printf("sandbox median / bwrap median = %.2f×\n", float64(a)/float64(b))
		if dB != nil {
			_, c, _ := stats(all[3].d)
			fmt.Printf("comparison: init B median / bwrap median = %.2f×, sandbox median / init B median = %.2f×\n", float64(c)/float64(b), float64(a)/float64(c))
		}
	}

	// 50 concurrent.
	var ready []time.Duration
	for round := 0; round < 5; round++ {
		var mu sync.Mutex
		var wg sync.WaitGroup
		errs := make(chan error, 50)
		for i := range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				name := fmt.Sprintf("conc-%d-%d", round, i)
				t0 := time.Now()
				if _, err := d.Create(ctx, sandbox.Spec{Name: name, Command: []string{"/bin/sh", "-c", "exec sleep 3600"}, Workspace: ws, Policy: pol, Listeners: listeners}); err != nil {
					errs <- err
					return
				}
				st, err := d.Start(ctx, name)
				if err != nil {
					errs <- err
					return
				}
				el := time.Since(t0)
				for _, l := range st.Listeners {
					l.Close()
				}
				mu.Lock()
				ready = append(ready, el)
				mu.Unlock()
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		list, _ := d.List(ctx)
		for _, i := range list {
			if err := d.Delete(ctx, i.Name); err != nil {
				t.Fatal(err)
			}
		}
	}
	mn, med, p99 := stats(ready)
	fmt.Printf("\n50 sandboxes started concurrently, 5 rounds (%d samples): time to ready min %s, median %s, p99 %s\n", len(ready), ms(mn), ms(med), ms(p99))
	fmt.Println("leaks after delete: " + leaks(filepath.Join(dir, "state")))
}

func stats(d []time.Duration) (mn, med, p99 time.Duration) {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	idx := (len(s)*99+99)/100 - 1
	return s[0], s[len(s)/2], s[min(idx, len(s)-1)]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

// leaks reports init processes, mounts and cgroups that outlived Delete.
func leaks(stateRoot string) string {
	var out []string
	// Only this process's own children: other supervisors on the machine
	// may be running sandboxes of their own.
	self := strconv.Itoa(os.Getpid())
	n := 0
	for _, p := range hostProcsWith("nemoclave-sandbox-init") {
		pid, _, _ := strings.Cut(p, ":")
		if b, err := os.ReadFile("/proc/" + pid + "/stat"); err == nil {
			if f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:])); len(f) > 1 && f[1] == self {
				n++
			}
		}
	}
	if n > 0 {
		out = append(out, fmt.Sprintf("%d init processes", n))
	}
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil && strings.Contains(string(b), stateRoot) {
		out = append(out, "mounts under the state root")
	}
	// This driver's cgroups end in its state-root digest; others on the
	// machine (other supervisors) are not ours to count.
	suffix := (&Driver{cfg: Config{StateRoot: stateRoot}}).cgroupLeaf("")
	if l, err := confine.DetectCgroups(); err == nil {
		for c, d := range l.SelfDirs() {
			ents, _ := os.ReadDir(filepath.Join(d, "nemoclave"))
			for _, e := range ents {
				if e.IsDir() && strings.HasSuffix(e.Name(), suffix) {
					out = append(out, "cgroup "+c+"/"+e.Name())
				}
			}
		}
	}
	if ents, _ := os.ReadDir(stateRoot); len(ents) > 0 {
		out = append(out, fmt.Sprintf("%d state dirs", len(ents)))
	}
	if len(out) == 0 {
		return "none (no init processes, no mounts, no cgroups, no state)"
	}
	return strings.Join(out, ", ")
}
