package local

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/sandbox"
)

// Launch edge cases and lifecycle, against the driver in this process.

func newTestDriver(t *testing.T) (*Driver, string) {
	t.Helper()
	testSetup(t)
	dir := t.TempDir()
	ws := filepath.Join(dir, "ws")
	if err := os.Mkdir(ws, 0o755); err != nil {
		t.Fatal(err)
	}
	d, err := New(Config{StateRoot: filepath.Join(dir, "state")})
	if err != nil {
		t.Fatal(err)
	}
	return d, ws
}

func testSpec(t *testing.T, ws string, argv ...string) sandbox.Spec {
	spec := sandbox.Spec{Name: sandboxName(t, "launch"), Command: argv, Workspace: ws, Policy: testPolicy()}
	if os.Geteuid() != 0 {
		spec.Resources.AllowUnlimited = true // no delegated cgroup for an in-process unprivileged run
	}
	return spec
}

func createStart(t *testing.T, d *Driver, spec sandbox.Spec) *sandbox.Started {
	t.Helper()
	ctx := t.Context()
	if _, err := d.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	st, err := d.Start(ctx, spec.Name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Delete(context.Background(), spec.Name) })
	return st
}

func waitFile(t *testing.T, p string) {
	t.Helper()
	for {
		if _, err := os.Stat(p); err == nil {
			return
		}
		if t.Context().Err() != nil {
			t.Fatalf("%s never appeared", p)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLaunch_AgentNotFound(t *testing.T) {
	t.Parallel()
	d, ws := newTestDriver(t)
	spec := testSpec(t, ws, "no-such-agent-binary")
	ctx := t.Context()
	if _, err := d.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	_, err := d.Start(ctx, spec.Name)
	if err == nil || !strings.Contains(err.Error(), `"no-such-agent-binary" not found on the sandbox PATH`) {
		t.Fatalf("want a not-found start error, got %v", err)
	}
	info, err := d.Status(ctx, spec.Name)
	if err != nil || info.State != sandbox.StateExited || !strings.HasPrefix(info.Reason, "start failed") {
		t.Errorf("status after failed start: %+v, %v", info, err)
	}
	if err := d.Delete(ctx, spec.Name); err != nil {
		t.Errorf("delete: %v", err)
	}
	if _, err := d.Status(ctx, spec.Name); !errors.Is(err, sandbox.ErrNotFound) {
		t.Errorf("status after delete: %v", err)
	}
}

func TestLaunch_AgentExitsImmediately(t *testing.T) {
	t.Parallel()
	d, ws := newTestDriver(t)
	for _, c := range []struct {
		argv []string
		code int
	}{{[]string{"true"}, 0}, {[]string{"/bin/sh", "-c", "exit 7"}, 7}, {[]string{"/bin/sh", "-c", "kill -9 $$"}, -1}} {
		spec := testSpec(t, ws, c.argv...)
		createStart(t, d, spec)
		info, err := d.Wait(t.Context(), spec.Name)
		if err != nil {
			t.Fatal(err)
		}
		if info.State != sandbox.StateExited || info.ExitCode != c.code {
			t.Errorf("%v: got %s code %d signal %q, want exited %d", c.argv, info.State, info.ExitCode, info.Signal, c.code)
		}
		if c.code == -1 && info.Signal != "SIGKILL" {
			t.Errorf("%v: signal %q, want SIGKILL", c.argv, info.Signal)
		}
	}
}

func TestLaunch_AgentIgnoresSIGTERM(t *testing.T) {
	t.Parallel()
	d, ws := newTestDriver(t)
	spec := testSpec(t, ws, "/bin/sh", "-c", `trap "" TERM; touch /workspace/ready; while :; do sleep 1; done`)
	createStart(t, d, spec)
	waitFile(t, filepath.Join(ws, "ready"))
	if err := d.Stop(t.Context(), spec.Name, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	info, _ := d.Status(t.Context(), spec.Name)
	if info.State != sandbox.StateExited || info.Signal != "SIGKILL" || info.Reason != "stopped" {
		t.Errorf("after stop: %+v", info)
	}

	// An agent that honours SIGTERM gets it forwarded and exits by it.
	spec = testSpec(t, ws, "/bin/sh", "-c", `rm -f /workspace/ready2; touch /workspace/ready2; exec sleep 3600`)
	createStart(t, d, spec)
	waitFile(t, filepath.Join(ws, "ready2"))
	if err := d.Stop(t.Context(), spec.Name, time.Minute); err != nil {
		t.Fatal(err)
	}
	info, _ = d.Status(t.Context(), spec.Name)
	if info.Signal != "SIGTERM" {
		t.Errorf("graceful stop: %+v, want killed by the forwarded SIGTERM", info)
	}
}

func TestLaunch_DeletedWhileAttached(t *testing.T) {
	t.Parallel()
	d, ws := newTestDriver(t)
	spec := testSpec(t, ws, "sleep", "3600")
	createStart(t, d, spec)
	term, err := d.Attach(t.Context(), spec.Name, sandbox.AttachRequest{Command: []string{"/bin/sh", "-c", "echo attached-$((6*7)); tty; exec sleep 3600"}})
	if err != nil {
		t.Fatal(err)
	}
	defer term.Close()
	r := bufio.NewReader(term)
	line, err := r.ReadString('\n')
	if err != nil || !strings.Contains(line, "attached-42") {
		t.Fatalf("attach output %q, %v", line, err)
	}
	if tty, _ := r.ReadString('\n'); !strings.HasPrefix(tty, "/dev/pts/") {
		t.Errorf("attached process has no terminal: %q", tty)
	}
	if err := d.Delete(t.Context(), spec.Name); err != nil {
		t.Fatal(err)
	}
	if _, err := term.Wait(t.Context()); err == nil {
		t.Errorf("attached process reported an exit after its sandbox was deleted; want an error")
	}
	if _, err := r.ReadString('\n'); err == nil {
		t.Errorf("terminal still readable after delete")
	}
	if _, err := d.Attach(t.Context(), spec.Name, sandbox.AttachRequest{}); !errors.Is(err, sandbox.ErrNotFound) {
		t.Errorf("attach after delete: %v", err)
	}
}

func TestLaunch_ExecAndLogs(t *testing.T) {
	t.Parallel()
	d, ws := newTestDriver(t)
	spec := testSpec(t, ws, "/bin/sh", "-c", "echo agent-says-hi; exec sleep 3600")
	createStart(t, d, spec)
	var out, errOut strings.Builder
	p, err := d.Exec(t.Context(), spec.Name, sandbox.ExecRequest{
		Command: []string{"/bin/sh", "-c", "tr a-z A-Z; echo oops >&2; grep NoNewPrivs /proc/self/status; exit 3"},
		Stdin:   strings.NewReader("hello"), Stdout: &out, Stderr: &errOut,
	})
	if err != nil {
		t.Fatal(err)
	}
	code, err := p.Wait(t.Context())
	if err != nil || code != 3 {
		t.Fatalf("exec: code %d, %v", code, err)
	}
	if !strings.HasPrefix(out.String(), "HELLO") || !strings.Contains(out.String(), "NoNewPrivs:\t1") || errOut.String() != "oops\n" {
		t.Errorf("exec output %q / %q", out.String(), errOut.String())
	}
	if _, err := d.Exec(t.Context(), spec.Name, sandbox.ExecRequest{Command: []string{"no-such-cmd"}}); err == nil {
		t.Errorf("exec of a missing command succeeded")
	}
	// R10: with the sandbox running, no directory of its state (the root
	// mount point included) is open to other users.
	state := filepath.Join(filepath.Dir(ws), "state")
	err = filepath.WalkDir(state, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if info, ierr := e.Info(); ierr == nil && e.IsDir() && info.Mode().Perm()&0o077 != 0 {
			t.Errorf("state directory %s is %v, want no access for group and others", p, info.Mode().Perm())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := d.Logs(t.Context(), spec.Name)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := bufio.NewReader(rc).ReadString('\n')
	rc.Close()
	if b != "agent-says-hi\n" {
		t.Errorf("logs start with %q", b)
	}
}

func TestLaunch_SupervisorRestart(t *testing.T) {
	t.Parallel()
	d, ws := newTestDriver(t)
	exited := testSpec(t, ws, "/bin/sh", "-c", "exit 9")
	createStart(t, d, exited)
	if _, err := d.Wait(t.Context(), exited.Name); err != nil {
		t.Fatal(err)
	}
	alive := testSpec(t, ws, "/bin/sh", "-c", "touch /workspace/alive; exec sleep 3600")
	createStart(t, d, alive)
	waitFile(t, filepath.Join(ws, "alive"))

	// A second driver over the same state root stands in for a restarted
	// supervisor.
	d2, err := New(d.cfg)
	if err != nil {
		t.Fatal(err)
	}
	list, err := d2.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]sandbox.Info{}
	for _, i := range list {
		got[i.Name] = i
	}
	if i := got[exited.Name]; i.State != sandbox.StateExited || i.ExitCode != 9 {
		t.Errorf("exited sandbox after restart: %+v", i)
	}
	if i := got[alive.Name]; i.State != sandbox.StateRunning {
		t.Errorf("running sandbox after restart: %+v", i)
	}
	// The new supervisor can still take it down.
	if err := d2.Delete(t.Context(), alive.Name); err != nil {
		t.Fatal(err)
	}
	if i, err := d.Wait(t.Context(), alive.Name); err != nil || i.State != sandbox.StateExited {
		t.Errorf("original supervisor saw %+v, %v", i, err)
	}

	// A record that says running whose init is gone and left no exit
	// status is reported as lost, not as running forever.
	lost := testSpec(t, ws, "true")
	if _, err := d2.Create(t.Context(), lost); err != nil {
		t.Fatal(err)
	}
	r, _ := d2.load(lost.Name)
	r.Info.State, r.InitPid, r.InitStart = sandbox.StateRunning, 1<<22-1, 12345
	if err := d2.save(r); err != nil {
		t.Fatal(err)
	}
	if i, _ := d2.Status(t.Context(), lost.Name); i.State != sandbox.StateLost {
		t.Errorf("dead record reported as %s", i.State)
	}
	_ = d2.Delete(t.Context(), lost.Name)
}

func TestLaunch_ConcurrentSandboxes(t *testing.T) {
	t.Parallel()
	d, ws := newTestDriver(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			spec := testSpec(t, ws, "/bin/sh", "-c", "exit "+string(rune('0'+i)))
			spec.Name += string(rune('a' + i))
			ctx := t.Context()
			if _, err := d.Create(ctx, spec); err != nil {
				errs <- err
				return
			}
			defer d.Delete(context.Background(), spec.Name)
			if _, err := d.Start(ctx, spec.Name); err != nil {
				errs <- err
				return
			}
			info, err := d.Wait(ctx, spec.Name)
			if err == nil && info.ExitCode != i {
				err = errors.New("wrong exit code " + info.Name)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestLaunch_SupervisorKilled kills the supervisor with SIGKILL while its
// sandbox runs: the sandbox must die with it (parent-death signal on the
// init stage, which takes its pid namespace down), and a new supervisor must
// report it as lost and clean it up.
func TestLaunch_SupervisorKilled(t *testing.T) {
	testSetup(t)
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the supervisor as a separate unprivileged process")
	}
	dir, ws := jobDir(t, rootlessMod)
	arg := strconv.Itoa(400000 + rand.IntN(90000))
	j := job{
		Name: sandboxName(t, rootlessMod), Argv: []string{"/bin/sh", "-c", "sleep " + arg + " & touch /workspace/ready; wait"},
		Policy: testPolicy(), Workspace: ws, StateRoot: filepath.Join(dir, "state"), Cgroup: rootlessCg,
	}
	b, _ := json.Marshal(j)
	jf := filepath.Join(dir, "job.json")
	if err := os.WriteFile(jf, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(probePath, "-test.run=^$")
	cmd.Env = []string{helperEnv + "=" + jf, "GORACE=atexit_sleep_ms=0"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: unprivUID, Gid: unprivUID}}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitFile(t, filepath.Join(ws, "ready"))
	// The shell forks `sleep` in the background before it touches ready,
	// but the fork may not have executed sleep yet (seen under load):
	// wait for it.
	for len(hostProcsWith("sleep\x00"+arg)) == 0 {
		if t.Context().Err() != nil {
			t.Fatal("agent not running")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Kill the supervisor only once its record says running: before that
	// the record truthfully says created.
	observer, err := New(Config{StateRoot: j.StateRoot, CgroupParent: rootlessCg})
	if err != nil {
		t.Fatal(err)
	}
	for {
		info, err := observer.Status(t.Context(), j.Name)
		if err == nil && info.State == sandbox.StateRunning {
			break
		}
		if t.Context().Err() != nil {
			t.Fatalf("the sandbox never recorded running: %+v, %v", info, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	for len(hostProcsWith("sleep\x00"+arg)) > 0 {
		if t.Context().Err() != nil {
			t.Fatalf("the agent outlived its supervisor: %v", hostProcsWith("sleep\x00"+arg))
		}
		time.Sleep(5 * time.Millisecond)
	}
	d, err := New(Config{StateRoot: j.StateRoot, CgroupParent: rootlessCg})
	if err != nil {
		t.Fatal(err)
	}
	// The agent dies first; init finishes tearing its namespace down just
	// after. Wait for the record to stop saying running.
	info, err := d.Status(t.Context(), j.Name)
	for err == nil && info.State == sandbox.StateRunning && t.Context().Err() == nil {
		time.Sleep(5 * time.Millisecond)
		info, err = d.Status(t.Context(), j.Name)
	}
	// Two truthful outcomes race: init dies before recording the agent's
	// status (lost), or records the SIGKILL it saw first (exited, killed).
	killed := info.State == sandbox.StateExited && info.Signal == "SIGKILL"
	if err != nil || (info.State != sandbox.StateLost && !killed) {
		log, _ := os.ReadFile(filepath.Join(j.StateRoot, j.Name, "agent.log"))
		t.Errorf("after the supervisor died: %+v, %v; want lost, or exited by SIGKILL\nagent log:\n%s", info, err, log)
	}
	if err := d.Delete(t.Context(), j.Name); err != nil {
		t.Errorf("cleanup by a new supervisor: %v", err)
	}
}

func TestLaunch_ProtectedSymlinkRefused(t *testing.T) {
	t.Parallel()
	d, ws := newTestDriver(t)
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(ws, ".git")); err != nil {
		t.Fatal(err)
	}
	spec := testSpec(t, ws, "true")
	spec.Policy.Filesystem.Protected = []string{".git/hooks"}
	if _, err := d.Create(t.Context(), spec); err != nil {
		t.Fatal(err)
	}
	defer d.Delete(context.Background(), spec.Name)
	_, err := d.Start(t.Context(), spec.Name)
	if err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Fatalf("want a refusal naming the symlink, got %v", err)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("the driver created %v outside the workspace through the link", ents)
	}
}

// TestLaunch_CgroupFailClosed: an unprivileged supervisor without a
// delegated cgroup cannot apply limits, so the sandbox refuses to start
// unless the caller opted out with AllowUnlimited.
func TestLaunch_CgroupFailClosed(t *testing.T) {
	testSetup(t)
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the supervisor as an unprivileged uid")
	}
	dir, ws := jobDir(t, rootlessMod)
	res := run(t, rootlessMod, dir, ws, job{Argv: []string{"/bin/sh", "-c", "echo ran > /workspace/ran"}, Cgroup: "not-delegated"})
	if !strings.Contains(res.StartErr, "cgroup limits cannot be applied") || !strings.Contains(res.StartErr, "allow_unlimited") {
		t.Errorf("want a loud cgroup refusal, got start=%q", res.StartErr)
	}
	if _, err := os.Stat(filepath.Join(ws, "ran")); err == nil {
		t.Errorf("the agent ran without limits")
	}
	dir, ws = jobDir(t, rootlessMod)
	res = run(t, rootlessMod, dir, ws, job{Argv: []string{"/bin/sh", "-c", "echo ran"}, Cgroup: "not-delegated",
		Resources: sandbox.Resources{AllowUnlimited: true}})
	if res.StartErr != "" || !strings.Contains(res.Output, "ran") || !strings.Contains(res.Output, "WARNING: running without cgroup limits") {
		t.Errorf("opted-out sandbox did not run: start=%q output=%q", res.StartErr, res.Output)
	}
}

// TestLaunch_DeleteRacesStart deletes sandboxes while they are starting:
// whichever wins, nothing may be left running or on disk.
func TestLaunch_DeleteRacesStart(t *testing.T) {
	t.Parallel()
	d, ws := newTestDriver(t)
	arg := strconv.Itoa(300000 + rand.IntN(90000))
	var wg sync.WaitGroup
	for i := range 6 {
		spec := testSpec(t, ws, "sleep", arg)
		spec.Name += strconv.Itoa(i)
		if _, err := d.Create(t.Context(), spec); err != nil {
			t.Fatal(err)
		}
		wg.Add(2)
		go func() {
			defer wg.Done()
			if st, err := d.Start(t.Context(), spec.Name); err == nil {
				for _, l := range st.Listeners {
					l.Close()
				}
			}
		}()
		go func() {
			defer wg.Done()
			if err := d.Delete(t.Context(), spec.Name); err != nil && !errors.Is(err, sandbox.ErrNotFound) {
				t.Errorf("delete: %v", err)
			}
		}()
	}
	wg.Wait()
	// A Start that lost the race finds nothing to start; one that won is
	// then running and a final Delete must take it down.
	list, _ := d.List(t.Context())
	for _, i := range list {
		if err := d.Delete(t.Context(), i.Name); err != nil {
			t.Errorf("final delete %s: %v", i.Name, err)
		}
	}
	if left := hostProcsWith("sleep\x00" + arg); len(left) > 0 {
		t.Errorf("processes left behind: %v", left)
	}
	if ents, _ := os.ReadDir(d.cfg.StateRoot); len(ents) > 0 {
		t.Errorf("state left behind: %d entries", len(ents))
	}
}

// TestLaunch_RootRunsAgentAsWorkspaceOwner: under a root supervisor the
// agent takes the workspace owner's uid, so host permissions apply to it.
func TestLaunch_RootRunsAgentAsWorkspaceOwner(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs a root supervisor")
	}
	d, ws := newTestDriver(t)
	if err := os.Chown(ws, unprivUID, unprivUID); err != nil {
		t.Fatal(err)
	}
	rootOnly := filepath.Join(testBase, "bin", "root-only-"+strconv.Itoa(rand.IntN(1<<30)))
	if err := os.WriteFile(rootOnly, []byte("root secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(rootOnly)
	spec := testSpec(t, ws, "/bin/sh", "-c", `echo "uid=$(id -u) gid=$(id -g)"; grep -E "^(CapEff|CapPrm|NoNewPrivs):" /proc/self/status
touch /workspace/made; cat `+rootOnly+` 2>&1 || true`)
	createStart(t, d, spec)
	if _, err := d.Wait(t.Context(), spec.Name); err != nil {
		t.Fatal(err)
	}
	rc, _ := d.Logs(t.Context(), spec.Name)
	var out strings.Builder
	bufio.NewReader(rc).WriteTo(&out)
	rc.Close()
	expectLines(t, out.String(), "uid=65534 gid=65534", "CapEff:\t0000000000000000", "CapPrm:\t0000000000000000", "NoNewPrivs:\t1", "Permission denied")
	if strings.Contains(out.String(), "root secret") {
		t.Errorf("the agent read a root-only file:\n%s", out.String())
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(ws, "made"), &st); err != nil || st.Uid != unprivUID {
		t.Errorf("file made by the agent: uid %d, %v; want %d", st.Uid, err, unprivUID)
	}
}

// The nemoclave binary is inside every sandbox at BinaryPath, first on
// PATH, read-only, whatever its host path (issue: a checkout under /tmp).
func TestLaunch_BinaryAtFixedPath(t *testing.T) {
	t.Parallel()
	testSetup(t)
	dir := t.TempDir()
	ws := filepath.Join(dir, "ws")
	if err := os.Mkdir(ws, 0o755); err != nil {
		t.Fatal(err)
	}
	// A host path under /tmp, which the sandbox replaces with its own.
	bin := filepath.Join(dir, "nemoclave")
	if err := copyFile(probePath, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	d, err := New(Config{StateRoot: filepath.Join(dir, "state"), Binary: bin})
	if err != nil {
		t.Fatal(err)
	}
	spec := testSpec(t, ws, "/bin/sh", "-c",
		`command -v nemoclave; od -An -c -N4 "$(command -v nemoclave)" | tr -d ' '; `+
			`if (echo x >> /opt/nemoclave/bin/nemoclave) 2>/dev/null; then echo writable; else echo read-only; fi; test -e `+bin+` && echo host-path-visible; echo done`)
	createStart(t, d, spec)
	if _, err := d.Wait(t.Context(), spec.Name); err != nil {
		t.Fatal(err)
	}
	rc, err := d.Logs(t.Context(), spec.Name)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	want := BinaryPath + "\n177ELF\nread-only\ndone\n"
	if got := strings.ReplaceAll(string(b), `\`, ""); got != want {
		t.Errorf("inside the sandbox:\n%s\nwant:\n%s", got, want)
	}
}

// TestLaunch_SpecFiles: the files a spec carries (the gateway's CA bundle)
// are inside the sandbox at their fixed path, read-only; the sandbox's
// record names the host source and its hash but holds none of its bytes;
// a source changed after Create is refused at Start; and a path outside
// sandbox.FilesDir is refused at Create.
func TestLaunch_SpecFiles(t *testing.T) {
	t.Parallel()
	d, ws := newTestDriver(t)
	body := strings.Repeat("-----CERT-----\n", 20000) // 300 KB: more than one control packet carries
	spec := testSpec(t, ws, "/bin/sh", "-c", `ls -la /opt/nemoclave /opt/nemoclave/etc > /workspace/diag 2>&1; cmp "$0" /workspace/want >> /workspace/diag 2>&1 || exit 3; echo x > "$0" 2>/dev/null && exit 4; exit 0`, sandbox.CABundlePath)
	if err := os.WriteFile(filepath.Join(ws, "want"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "ca-bundle.pem")
	if err := os.WriteFile(src, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	spec.Files = []sandbox.File{sandbox.NewFile(sandbox.CABundlePath, src, []byte(body))}
	createStart(t, d, spec)
	info, err := d.Wait(t.Context(), spec.Name)
	if err != nil {
		t.Fatal(err)
	}
	if info.ExitCode != 0 {
		diag, _ := os.ReadFile(filepath.Join(ws, "diag"))
		t.Errorf("agent exit %d: 3 = the file differs or is missing, 4 = it was writable:\n%s", info.ExitCode, diag)
	}
	rec, err := os.ReadFile(filepath.Join(d.dir(spec.Name), "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rec) > 16<<10 || strings.Contains(string(rec), "CERT") || !strings.Contains(string(rec), src) {
		t.Errorf("the record should name %s and hold none of its %d bytes; it is %d bytes", src, len(body), len(rec))
	}
	if err := filepath.WalkDir(d.dir(spec.Name), func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			if fi, _ := e.Info(); fi != nil && fi.Size() >= int64(len(body)) {
				t.Errorf("%s (%d bytes) looks like a second copy of the file", p, fi.Size())
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	changed := testSpec(t, ws, "true")
	changed.Name += "-changed"
	changed.Files = spec.Files
	if _, err := d.Create(t.Context(), changed); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Delete(context.Background(), changed.Name) })
	if err := os.WriteFile(src, []byte("-----OTHER-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Start(t.Context(), changed.Name); err == nil || !strings.Contains(err.Error(), "changed after the sandbox was created") {
		t.Errorf("a source replaced after Create was not refused: %v", err)
	}

	bad := testSpec(t, ws, "true")
	bad.Name += "-bad"
	bad.Files = []sandbox.File{sandbox.NewFile("/etc/passwd", src, []byte("x"))}
	if _, err := d.Create(t.Context(), bad); err == nil || !strings.Contains(err.Error(), sandbox.FilesDir) {
		t.Errorf("a file outside %s was not refused: %v", sandbox.FilesDir, err)
	}
	bad.Files = []sandbox.File{{Path: sandbox.CABundlePath, Source: src}}
	if _, err := d.Create(t.Context(), bad); err == nil || !strings.Contains(err.Error(), "SHA-256") {
		t.Errorf("a file without its hash was not refused: %v", err)
	}
}
