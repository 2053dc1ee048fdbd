package local

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"

	"github.com/nemoclave/nemoclave/policy"
	"github.com/nemoclave/nemoclave/sandbox"
	"github.com/nemoclave/nemoclave/sandbox/confine"
)

// The escape tests run real sandboxes, twice: with the test binary as the
// supervisor running as root, and with a copy of the test binary re-executed
// as an unprivileged uid (go-plugin helper-process style), which makes the
// driver use a user namespace and a delegated cgroup. The copy also serves
// as the in-sandbox probe (probe_test.go), mounted read-only from testBase.

const (
	helperEnv   = "NEMOCLAVE_TEST_HELPER" // path of a job.json: run it, print result.json
	unprivUID   = 65534
	rootlessCg  = "nemoclave-rootless-test"
	testCanary  = "sk-canary-do-not-leak-7f3a9c"
	rootMode    = "root"
	rootlessMod = "rootless"
)

var (
	// testBase is a world-traversable directory outside /tmp (the sandbox
	// mounts its own /tmp) that holds the probe binary and job directories.
	testBase  string
	probePath string
	setupOnce sync.Once
	setupErr  error
)

type job struct {
	Name   string         `json:"name"`
	Argv   []string       `json:"argv"`
	Policy *policy.Policy `json:"policy"`
	// NoPolicy sends a nil policy to the driver (run otherwise fills in
	// testPolicy).
	NoPolicy  bool              `json:"no_policy,omitempty"`
	Resources sandbox.Resources `json:"resources"`
	Listeners []string          `json:"listeners,omitempty"`
	Env       map[string]string `json:"env,omitempty"`
	Timeout   time.Duration     `json:"timeout,omitempty"`
	Workspace string            `json:"workspace"`
	StateRoot string            `json:"state_root"`
	Cgroup    string            `json:"cgroup,omitempty"`
	// DaemonHome is the driver's Config.DaemonHome.
	DaemonHome string `json:"daemon_home,omitempty"`
	// Reload, when set, is applied with UpdatePolicy right after Start;
	// then the file "reloaded" is created in the workspace for the agent
	// to wait on.
	Reload *policy.Policy `json:"reload,omitempty"`
	// Attach runs this command on a pseudo terminal once the agent runs;
	// its output is appended to result.Output after "--- attach ---".
	Attach []string `json:"attach,omitempty"`
	// DeleteWhenFile deletes the running sandbox as soon as the agent has
	// created this workspace file.
	DeleteWhenFile string `json:"delete_when_file,omitempty"`
	// Stdin is the agent's stdin mode; Console are the steps typed into
	// it once it runs (console_test.go).
	Stdin   sandbox.StdinMode `json:"stdin,omitempty"`
	Console []consoleStep     `json:"console,omitempty"`
}

type result struct {
	CreateErr string         `json:"create_err,omitempty"`
	StartErr  string         `json:"start_err,omitempty"`
	Info      sandbox.Info   `json:"info"`
	Output    string         `json:"output"`
	Ports     map[string]int `json:"ports,omitempty"`
	Leftover  []string       `json:"leftover,omitempty"`
}

// helperMain runs a job when this binary was started as the unprivileged
// helper, or a probe when started inside a sandbox. It reports whether it
// handled the process (the caller then exits).
func helperMain() bool {
	if probeMain() {
		return true
	}
	jf := os.Getenv(helperEnv)
	if jf == "" {
		return false
	}
	b, err := os.ReadFile(jf)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var j job
	if err := json.Unmarshal(b, &j); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	res := runInProcess(context.Background(), j)
	out, _ := json.Marshal(res)
	os.Stdout.Write(out)
	os.Exit(0)
	return true
}

func testSetup(t *testing.T) {
	t.Helper()
	setupOnce.Do(func() {
		testBase, setupErr = os.MkdirTemp("/var/tmp", "nemoclave-sandbox-test-")
		if setupErr != nil {
			return
		}
		if setupErr = os.Chmod(testBase, 0o755); setupErr != nil {
			return
		}
		self, err := os.Executable()
		if err != nil {
			setupErr = err
			return
		}
		if setupErr = os.Mkdir(filepath.Join(testBase, "bin"), 0o755); setupErr != nil {
			return
		}
		probePath = filepath.Join(testBase, "bin", "probe")
		setupErr = copyFile(self, probePath, 0o755)
		if setupErr == nil && os.Geteuid() == 0 {
			setupErr = delegateCgroup()
		}
	})
	if setupErr != nil {
		t.Fatalf("test setup: %v", setupErr)
	}
}

func testCleanup() {
	if testBase != "" {
		_ = os.RemoveAll(testBase)
	}
	if os.Geteuid() == 0 {
		if l, err := confine.DetectCgroups(); err == nil {
			for _, d := range l.SelfDirs() {
				_ = syscall.Rmdir(filepath.Join(d, rootlessCg))
			}
		}
	}
}

// delegateCgroup gives the unprivileged uid a cgroup of its own, as systemd
// does with Delegate=yes, so rootless sandboxes get real limits.
func delegateCgroup() error {
	l, err := confine.DetectCgroups()
	if err != nil {
		return err
	}
	var dirs []string
	for _, d := range l.SelfDirs() {
		dirs = append(dirs, filepath.Join(d, rootlessCg))
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		for _, f := range []string{"", "cgroup.procs", "tasks", "cgroup.subtree_control"} {
			p := filepath.Join(d, f)
			if _, err := os.Stat(p); err == nil {
				if err := os.Chown(p, unprivUID, unprivUID); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// testPolicy grants the system read-only, the probe directory read-only,
// and the workspace and /tmp read-write.
func testPolicy() *policy.Policy {
	return &policy.Policy{
		Name:         "test",
		Revision:     1,
		UnknownHosts: policy.UnknownDeny,
		Filesystem: policy.Filesystem{
			ReadOnly:  []string{"/usr", "/bin", "/sbin", "/lib", "/lib64", "/etc", filepath.Join(testBase, "bin")},
			ReadWrite: []string{"/workspace", "/tmp"},
		},
	}
}

// modes runs fn as root and as the unprivileged uid. Each mode is a
// parallel subtest.
func modes(t *testing.T, fn func(t *testing.T, mode string)) {
	testSetup(t)
	t.Parallel()
	// The driver refuses to start below its default Landlock floor (fail
	// closed), so on such a kernel every row is skipped, loudly.
	if abi, err := ll.LandlockGetABIVersion(); err != nil || abi < DefaultMinLandlockABI {
		t.Skipf("kernel Landlock ABI %d (err %v) is below %d, which the driver requires by default (abstract-socket and signal scoping); the sandbox refuses to start here", abi, err, DefaultMinLandlockABI)
	}
	for _, m := range []string{rootMode, rootlessMod} {
		t.Run(m, func(t *testing.T) {
			t.Parallel()
			if m == rootMode && os.Geteuid() != 0 {
				t.Skip("root mode needs the tests to run as root (CI does)")
			}
			if m == rootlessMod {
				if os.Geteuid() != 0 {
					t.Skip("rootless mode is driven from root (it re-executes the test binary as uid 65534)")
				}
				if b, err := os.ReadFile("/proc/sys/user/max_user_namespaces"); err != nil || strings.TrimSpace(string(b)) == "0" {
					t.Skip("user namespaces are disabled on this kernel (user.max_user_namespaces = 0); rootless sandboxes cannot start")
				}
			}
			fn(t, m)
		})
	}
}

// jobDir makes a private job directory with a workspace and a state root,
// owned by the uid that will run the supervisor.
func jobDir(t *testing.T, mode string) (dir, ws string) {
	t.Helper()
	dir, err := os.MkdirTemp(testBase, "job-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	ws = filepath.Join(dir, "ws")
	if err := os.Mkdir(ws, 0o755); err != nil {
		t.Fatal(err)
	}
	if mode == rootlessMod {
		if err := os.Chown(dir, unprivUID, unprivUID); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(ws, unprivUID, unprivUID); err != nil {
			t.Fatal(err)
		}
	}
	return dir, ws
}

// chownTree hands a prepared workspace to the unprivileged uid.
func chownTree(t *testing.T, mode, root string) {
	t.Helper()
	if mode != rootlessMod {
		return
	}
	err := filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, unprivUID, unprivUID)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func sandboxName(t *testing.T, mode string) string {
	n := strings.ToLower(strings.TrimPrefix(t.Name(), "TestEscape_"))
	n = strings.NewReplacer("/", "-", "_", "-").Replace(n)
	if len(n) > 36 {
		n = n[:36]
	}
	return strings.Trim(fmt.Sprintf("%s-%s-%04x", n, mode[:2], rand.IntN(0xffff)), "-")
}

// run executes j (sh -c script when Argv is empty) in a sandbox in the
// given mode and returns what happened. ws is prepared by the caller.
func run(t *testing.T, mode, dir, ws string, j job) result {
	t.Helper()
	if j.Name == "" {
		j.Name = sandboxName(t, mode)
	}
	if j.Policy == nil && !j.NoPolicy {
		j.Policy = testPolicy()
	}
	j.Workspace, j.StateRoot = ws, filepath.Join(dir, "state")
	if j.Env == nil {
		j.Env = map[string]string{}
	}
	if _, ok := j.Env["PROBE"]; !ok {
		j.Env["PROBE"] = probePath
		j.Env[probeEnv] = "1"
		j.Env["GORACE"] = "atexit_sleep_ms=0"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if mode == rootMode {
		res := runInProcess(ctx, j)
		logResult(t, res)
		return res
	}
	if j.Cgroup == "" {
		j.Cgroup = rootlessCg
	}
	return helperRun(t, dir, j)
}

// helperRun runs j in the unprivileged helper process.
func helperRun(t *testing.T, dir string, j job) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, _ := json.Marshal(j)
	jf := filepath.Join(dir, "job.json")
	if err := os.WriteFile(jf, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, probePath, "-test.run=^$")
	cmd.Env = []string{helperEnv + "=" + jf, "OPENAI_API_KEY=" + testCanary, "PATH=/usr/bin:/bin", "GORACE=atexit_sleep_ms=0"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: unprivUID, Gid: unprivUID}}
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("rootless helper: %v\n%s", err, stderr.String())
	}
	var res result
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("rootless helper output: %v\n%s\n%s", err, out, stderr.String())
	}
	logResult(t, res)
	return res
}

// runInProcess is the supervisor side of a job: create, start, serve the
// listeners with a test handler, wait, collect the log, delete.
func runInProcess(ctx context.Context, j job) result {
	var res result
	// NEMOCLAVE_TEST_INIT runs the jobs with the init stage the daemon
	// ships (bin/nemoclave-sandbox-init) instead of this test binary.
	d, err := New(Config{StateRoot: j.StateRoot, CgroupParent: j.Cgroup, DaemonHome: j.DaemonHome, Executable: os.Getenv("NEMOCLAVE_TEST_INIT")})
	if err != nil {
		res.CreateErr = err.Error()
		return res
	}
	argv := j.Argv
	spec := sandbox.Spec{
		Name: j.Name, Command: argv, Env: j.Env, Workspace: j.Workspace, Policy: j.Policy,
		Resources: j.Resources, Timeout: j.Timeout, Stdin: j.Stdin,
	}
	for _, l := range j.Listeners {
		spec.Listeners = append(spec.Listeners, sandbox.ListenerSpec{Name: l})
	}
	if _, err := d.Create(ctx, spec); err != nil {
		res.CreateErr = err.Error()
		return res
	}
	defer func() {
		if err := d.Delete(context.Background(), j.Name); err != nil {
			res.Leftover = append(res.Leftover, "delete: "+err.Error())
		}
		if _, err := os.Stat(filepath.Join(j.StateRoot, j.Name)); err == nil {
			res.Leftover = append(res.Leftover, "state dir left behind")
		}
	}()
	st, err := d.Start(ctx, j.Name)
	if err != nil {
		res.StartErr = err.Error()
		info, _ := d.Status(ctx, j.Name)
		res.Info = info
		return res
	}
	for name, l := range st.Listeners {
		go serveGateway(name, l)
		defer l.Close()
	}
	if j.Reload != nil {
		if err := d.UpdatePolicy(ctx, j.Name, j.Reload); err != nil {
			res.StartErr = "reload: " + err.Error()
		}
		_ = os.WriteFile(filepath.Join(j.Workspace, "reloaded"), nil, 0o644)
	}
	var consoleOut string
	if j.Console != nil {
		consoleOut = driveConsole(ctx, d, j)
	}
	var attachOut string
	if len(j.Attach) > 0 {
		attachOut = attachAndRead(ctx, d, j)
	}
	if j.DeleteWhenFile != "" {
		for ctx.Err() == nil {
			if _, err := os.Stat(filepath.Join(j.Workspace, j.DeleteWhenFile)); err == nil {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		info, _ := d.Status(ctx, j.Name)
		if err := d.Delete(ctx, j.Name); err != nil {
			res.Leftover = append(res.Leftover, "delete while running: "+err.Error())
		}
		res.Info = info
		return res
	}
	info, err := d.Wait(ctx, j.Name)
	if err != nil {
		res.StartErr = "wait: " + err.Error()
		_ = d.Stop(context.Background(), j.Name, 0)
		info, _ = d.Status(ctx, j.Name)
	}
	res.Info = info
	res.Ports = info.Ports
	if rc, err := d.Logs(ctx, j.Name); err == nil {
		b, _ := io.ReadAll(rc)
		rc.Close()
		res.Output = string(b)
	}
	if len(j.Attach) > 0 {
		res.Output += "--- attach ---\n" + attachOut
	}
	if j.Console != nil {
		res.Output += "--- console ---\n" + consoleOut
	}
	return res
}

// attachAndRead runs j.Attach on a terminal, collects its output, then
// stops the agent.
func attachAndRead(ctx context.Context, d *Driver, j job) string {
	term, err := d.Attach(ctx, j.Name, sandbox.AttachRequest{Command: j.Attach, Env: j.Env, Rows: 24, Cols: 80})
	if err != nil {
		return "attach error: " + err.Error()
	}
	var out strings.Builder
	done := make(chan struct{})
	go func() { _, _ = io.Copy(&out, term); close(done) }()
	code, err := term.Wait(ctx)
	// The terminal reads EIO once the last slave holder exits.
	<-done
	term.Close()
	_ = d.Stop(ctx, j.Name, 0)
	return fmt.Sprintf("%sattach exit=%d err=%v\n", out.String(), code, err)
}

// logResult shows the sandbox's output in -v runs, so a reviewer sees what
// each attempt actually got back.
func logResult(t *testing.T, res result) {
	t.Helper()
	t.Logf("create=%q start=%q state=%s exit=%d signal=%s reason=%q\n%s",
		res.CreateErr, res.StartErr, res.Info.State, res.Info.ExitCode, res.Info.Signal, res.Info.Reason, res.Output)
}

func serveGateway(name string, l net.Listener) {
	_ = http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "gateway:%s %s %s", name, r.Method, r.URL.Path)
	}))
}

// sh runs script with /bin/sh -c and fails the test if the sandbox did not
// start or exit cleanly. It returns the agent's output.
func sh(t *testing.T, mode, script string, mut ...func(*job)) (string, string) {
	t.Helper()
	dir, ws := jobDir(t, mode)
	j := job{Argv: []string{"/bin/sh", "-c", script}}
	for _, m := range mut {
		m(&j)
	}
	res := run(t, mode, dir, ws, j)
	if res.CreateErr != "" || res.StartErr != "" {
		t.Fatalf("sandbox did not run: create=%q start=%q", res.CreateErr, res.StartErr)
	}
	if len(res.Leftover) > 0 {
		t.Errorf("cleanup: %v", res.Leftover)
	}
	return res.Output, ws
}

// expectLines checks that every want line appears in the output.
func expectLines(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q\n--- output ---\n%s", w, out)
		}
	}
}

func TestSmoke(t *testing.T) {
	modes(t, func(t *testing.T, mode string) {
		out, _ := sh(t, mode, `echo hello; id -u; echo "$HTTP_PROXY"; cat /proc/self/status | grep -E 'NoNewPrivs|CapEff|CapBnd|Seccomp:'; ls /; exit 3`,
			func(j *job) { j.Listeners = []string{sandbox.ListenerEgress} })
		expectLines(t, out, "hello", "NoNewPrivs:\t1", "CapEff:\t0000000000000000")
		t.Log(out)
	})
}
