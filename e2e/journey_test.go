package e2e

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The operator's journey as a new user meets it: a checkout (and binaries)
// under /tmp, re-runs, a daemon left over from another build.

// tmpBins copies the binaries to a fresh directory under /tmp, where the
// sandbox has its own /tmp: the nemoclave binary must reach the sandbox at
// its fixed path, never at this host path.
func tmpBins(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "nemoclave-journey-bin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	copyDir(t, bins(t), dir)
	return dir
}

// newEnvWith is newEnv with its own binary directory and, when home is not
// empty, a shared home (two CLI builds talking to one daemon).
func newEnvWith(t *testing.T, bin, home string, extra ...string) *env {
	t.Helper()
	if home == "" {
		home = t.TempDir()
	}
	e := &env{t: t, bin: bin, home: home}
	e.vars = append(os.Environ(), "NEMOCLAVE_HOME="+e.home, "NEMOCLAVE_BIN_DIR="+e.bin)
	e.vars = append(e.vars, extra...)
	t.Cleanup(func() { e.run(context.Background(), "daemon", "stop") })
	return e
}

// waitState polls `sandbox list` until the sandbox is in state.
func (e *env) waitState(name, want string) {
	e.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		var list []struct{ Name, State string }
		if err := json.Unmarshal([]byte(e.must("sandbox", "list", "-o", "json")), &list); err != nil {
			e.t.Fatal(err)
		}
		for _, s := range list {
			if s.Name == name && s.State == want {
				return
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("sandbox %s never reached state %s: %+v\n%s", name, want, list, e.daemonLog())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestJourney_QuickstartFromTmpRunsTwice is the acceptance case: from a
// checkout under /tmp the quickstart answers, and answers again at once;
// a detached run whose agent exited is replaced by the next run.
func TestJourney_QuickstartFromTmpRunsTwice(t *testing.T) {
	e := newEnvWith(t, tmpBins(t), "")
	dir := filepath.Join(t.TempDir(), "quickstart")
	copyDir(t, filepath.Join(repoRoot(t), "examples", "quickstart"), dir)
	bp := filepath.Join(dir, "blueprint.hcl")
	for i := range 2 {
		r := e.run(t.Context(), "run", bp)
		if r.code != 0 || !strings.Contains(r.stdout, "→ list_files") {
			t.Fatalf("run %d: exit %d\nstdout:\n%s\nstderr:\n%s\n%s", i+1, r.code, r.stdout, r.stderr, e.daemonLog())
		}
	}
	e.must("run", "-d", bp)
	e.waitState("quickstart", "exited")
	// The exited sandbox is this blueprint's own: the re-run replaces it.
	e.must("run", "-d", bp)
	e.waitState("quickstart", "exited")
	e.must("sandbox", "delete", "quickstart")
}

// TestJourney_Reruns: a running sandbox of the blueprint is refused with
// --replace offered; --replace replaces it; another blueprint's sandbox is
// never deleted; a failed start leaves nothing; add-preset works on a
// fresh home; the nemoclave binary is on the sandbox PATH.
func TestJourney_Reruns(t *testing.T) {
	e := newEnv(t, "E2E_PROVIDER_KEY="+providerKey)
	cassette := filepath.Join(repoRoot(t), "examples", "quickstart", "cassette.json")
	dir := filepath.Join(t.TempDir(), "keepalive")
	copyDir(t, filepath.Join(repoRoot(t), "e2e", "testdata", "keepalive"), dir)
	bp := filepath.Join(dir, "blueprint.hcl")
	e.must("run", "-d", bp, "--var", "cassette="+cassette)
	e.waitState("e2e", "running")

	r := e.run(t.Context(), "run", "-d", bp, "--var", "cassette="+cassette)
	if r.code == 0 || !strings.Contains(r.stderr, "is running") || !strings.Contains(r.stderr, "--replace") || !strings.Contains(r.stderr, bp) {
		t.Fatalf("re-run of a running sandbox: exit %d, want a refusal naming %s and offering --replace:\n%s", r.code, bp, r.stderr)
	}
	e.must("run", "-d", bp, "--replace", "--var", "cassette="+cassette)
	e.waitState("e2e", "running")

	// `nemoclave` resolves on the sandbox PATH, at its fixed path.
	if out := e.must("sandbox", "exec", "e2e", "--", "/bin/sh", "-c", "command -v nemoclave; nemoclave --help | head -1"); !strings.HasPrefix(out, "/opt/nemoclave/bin/nemoclave\n") {
		t.Errorf("nemoclave on the sandbox PATH: %q", out)
	}

	// A fresh home has no presets directory; add-preset still works.
	if _, err := os.Stat(filepath.Join(e.home, "presets")); err == nil {
		t.Fatal("the home already has a presets directory; the test needs a fresh one")
	}
	e.must("policy", "add-preset", "e2e", "npm")
	if got := e.must("policy", "get", "e2e"); !strings.Contains(got, "npm") {
		t.Errorf("policy after add-preset npm:\n%s", got)
	}

	other := filepath.Join(t.TempDir(), "other")
	copyDir(t, dir, other)
	r = e.run(t.Context(), "run", "-d", filepath.Join(other, "blueprint.hcl"), "--var", "cassette="+cassette)
	if r.code == 0 || !strings.Contains(r.stderr, "belongs to another blueprint") {
		t.Fatalf("run of another blueprint over sandbox e2e: exit %d\n%s", r.code, r.stderr)
	}
	e.waitState("e2e", "running") // untouched
	e.must("sandbox", "delete", "e2e")

	// A start that fails at the agent step leaves no record behind.
	broken := filepath.Join(t.TempDir(), "broken")
	copyDir(t, dir, broken)
	b, err := os.ReadFile(filepath.Join(broken, "blueprint.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.Replace(b, []byte(`command = ["/bin/sh", "-c",`), []byte(`command = ["no-such-agent", "-c",`), 1)
	if err := os.WriteFile(filepath.Join(broken, "blueprint.hcl"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	r = e.run(t.Context(), "run", "-d", filepath.Join(broken, "blueprint.hcl"), "--var", "cassette="+cassette)
	if r.code == 0 || !strings.Contains(r.stderr, "no-such-agent") {
		t.Fatalf("run of a broken agent: exit %d\n%s", r.code, r.stderr)
	}
	assertDiagnosticOnce(t, r.stderr)
	if list := e.must("sandbox", "list", "-o", "json"); strings.Contains(list, `"e2e"`) {
		t.Fatalf("a failed start left its sandbox behind: %s", list)
	}
	e.must("run", "-d", bp, "--var", "cassette="+cassette)
	e.waitState("e2e", "running")
	e.must("sandbox", "delete", "e2e")
}

// TestJourney_DaemonVersionMismatch: a daemon started by another build is
// restarted by the CLI when idle, and reported (not restarted) when busy.
func TestJourney_DaemonVersionMismatch(t *testing.T) {
	old := tmpBins(t)
	patchBuildID(t, filepath.Join(old, "nemoclave"))
	oldEnv := newEnvWith(t, old, "", "E2E_PROVIDER_KEY="+providerKey)
	cur := newEnvWith(t, bins(t), oldEnv.home, "E2E_PROVIDER_KEY="+providerKey)

	type info struct {
		Version string `json:"version"`
		BuildID string `json:"build_id"`
		Pid     int32  `json:"pid"`
	}
	var v struct {
		CLI     info  `json:"cli"`
		Daemon  *info `json:"daemon"`
		Warning string
	}
	version := func(e *env) {
		t.Helper()
		v.Daemon, v.Warning = nil, ""
		if err := json.Unmarshal([]byte(e.must("version", "-o", "json")), &v); err != nil {
			t.Fatal(err)
		}
	}

	oldEnv.must("sandbox", "list") // starts the old build's daemon
	version(cur)
	if v.Daemon == nil || v.Daemon.BuildID == v.CLI.BuildID || v.Warning == "" {
		t.Fatalf("version against the old daemon: %+v", v)
	}
	oldPid := v.Daemon.Pid

	r := cur.run(t.Context(), "sandbox", "list")
	if r.code != 0 {
		t.Fatalf("sandbox list: %d\n%s", r.code, r.stderr)
	}
	version(cur)
	if v.Daemon == nil || v.Daemon.BuildID != v.CLI.BuildID || v.Daemon.Pid == oldPid || v.Warning != "" {
		t.Fatalf("the idle mismatched daemon was not restarted: %+v", v)
	}

	// Busy: the old build's daemon runs a sandbox; the CLI leaves it.
	oldEnv.must("daemon", "stop")
	dir := filepath.Join(t.TempDir(), "keepalive")
	copyDir(t, filepath.Join(repoRoot(t), "e2e", "testdata", "keepalive"), dir)
	cassette := filepath.Join(repoRoot(t), "examples", "quickstart", "cassette.json")
	oldEnv.must("run", "-d", filepath.Join(dir, "blueprint.hcl"), "--var", "cassette="+cassette)
	version(oldEnv)
	busyPid := v.Daemon.Pid
	r = cur.run(t.Context(), "sandbox", "list")
	if r.code != 0 || !strings.Contains(r.stderr, "runs 1 sandbox") || !strings.Contains(r.stderr, "nemoclave daemon stop") {
		t.Fatalf("sandbox list against a busy old daemon: exit %d\nstderr:\n%s", r.code, r.stderr)
	}
	version(cur)
	if v.Daemon == nil || v.Daemon.Pid != busyPid {
		t.Fatalf("the busy daemon was restarted: %+v (was pid %d)", v, busyPid)
	}
	oldEnv.must("sandbox", "delete", "e2e")
}

// patchBuildID changes the Go build id in a copy of the binary (its
// .note.go.buildid ELF note), which is what a rebuild does: the binary
// still runs, and the daemon handshake must see another build.
func patchBuildID(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s := f.Section(".note.go.buildid")
	if s == nil {
		f.Close()
		t.Skip("the binary has no Go build id note")
	}
	note, err := s.Data()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	descsz := binary.LittleEndian.Uint32(note[4:8])
	id := note[16 : 16+descsz]
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	patched := append([]byte(nil), id...)
	patched[len(patched)-1] ^= 0x01 // still a printable id character
	if bytes.Count(b, id) == 0 {
		t.Fatal("build id not found in the binary")
	}
	b = bytes.ReplaceAll(b, id, patched)
	if err := os.WriteFile(path, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// assertDiagnosticOnce checks that a failed run printed its failed step's
// diagnostic (the indented block under "✗ <step> failed") exactly once,
// and, not on a terminal, no spinner: one plain line per step.
func assertDiagnosticOnce(t *testing.T, stderr string) {
	t.Helper()
	lines := strings.Split(stderr, "\n")
	var block []string
	for i, l := range lines {
		if strings.HasPrefix(l, "✗ ") {
			for _, d := range lines[i+1:] {
				if !strings.HasPrefix(d, "    ") {
					break
				}
				if d = strings.TrimSpace(d); d != "" {
					block = append(block, d)
				}
			}
			break
		}
	}
	if len(block) == 0 {
		t.Fatalf("no failed step with a diagnostic in:\n%s", stderr)
	}
	for _, d := range block {
		if n := strings.Count(stderr, d); n != 1 {
			t.Errorf("the diagnostic line %q is printed %d times, want once:\n%s", d, n, stderr)
		}
	}
	if strings.Count(stderr, "✗ ") != 1 {
		t.Errorf("more than one failed step reported:\n%s", stderr)
	}
	if strings.ContainsAny(stderr, "\r⠋") {
		t.Errorf("a spinner was drawn on a pipe:\n%q", stderr)
	}
	for _, step := range []string{"✓ evaluate blueprint", "✓ launch plugins"} {
		if n := strings.Count(stderr, step); n != 1 {
			t.Errorf("%q is shown %d times, want one line:\n%s", step, n, stderr)
		}
	}
}
