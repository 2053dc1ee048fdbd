package runtime

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"

	"github.com/nemoclave/nemoclave/host/daemon"
	"github.com/nemoclave/nemoclave/sdk/plugin"
)

// A run carries the CLI's NEMOCLAVE_REATTACH_PLUGINS to the running daemon:
// its llm plugin is the debug process started by hand, not a launch of the
// installed binary; a run without it launches the binary; a malformed value
// is refused with what to do.
func TestRunReattachesDebugPlugins(t *testing.T) {
	t.Parallel()
	_, file, _, _ := goruntime.Caller(0)
	bin := filepath.Join(t.TempDir(), "debugreplay")
	if out, err := exec.Command("go", "build", "-C", filepath.Dir(file), "-o", bin, "./testdata/debugreplay").CombinedOutput(); err != nil {
		t.Fatalf("build the debug plugin: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	// The debug plugin listens in its temp dir and is killed, not stopped:
	// its socket goes with the test's directory.
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var line string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if _, v, ok := strings.Cut(sc.Text(), "export "+plugin.ReattachEnv+"="); ok {
			line = strings.Trim(v, "'")
			break
		}
	}
	if line == "" {
		t.Fatalf("the debug plugin printed no reattach line (%v)", sc.Err())
	}

	r, ctx := upRuntime(t)
	llmPid := func() int {
		r.pool.mu.Lock()
		defer r.pool.mu.Unlock()
		for s := range r.pool.bySup {
			return s.Pid()
		}
		return 0
	}
	if err := r.Run(ctx, daemon.RunRequest{Path: writeBlueprint(t, withModel(oneAgent)), Detach: true, ReattachPlugins: line}, &events{}); err != nil {
		t.Fatalf("run with the debug plugin: %v", err)
	}
	if got := llmPid(); got != cmd.Process.Pid {
		t.Fatalf("the run's llm plugin is pid %d, want the debug process %d", got, cmd.Process.Pid)
	}
	if _, err := r.DeleteSandbox(ctx, "box"); err != nil {
		t.Fatal(err)
	}
	if err := r.Run(ctx, daemon.RunRequest{Path: writeBlueprint(t, withModel(oneAgent)), Detach: true}, &events{}); err != nil {
		t.Fatalf("run without it: %v", err)
	}
	if got := llmPid(); got == cmd.Process.Pid || got == 0 {
		t.Fatalf("a run without NEMOCLAVE_REATTACH_PLUGINS used pid %d (the debug process is %d)", got, cmd.Process.Pid)
	}
	if _, err := r.DeleteSandbox(ctx, "box"); err != nil {
		t.Fatal(err)
	}
	err = r.Run(ctx, daemon.RunRequest{Path: writeBlueprint(t, withModel(oneAgent)), Detach: true, ReattachPlugins: "{not json"}, &events{})
	if err == nil || !strings.Contains(err.Error(), plugin.ReattachEnv) || !strings.Contains(err.Error(), "unset it") {
		t.Fatalf("a malformed value: %v, want a refusal naming %s", err, plugin.ReattachEnv)
	}
}
