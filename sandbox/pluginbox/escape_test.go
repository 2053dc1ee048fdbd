package pluginbox_test

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"

	"github.com/nemoclave/nemoclave/host/plugins"
	"github.com/nemoclave/nemoclave/sandbox"
	"github.com/nemoclave/nemoclave/sandbox/confine"
	"github.com/nemoclave/nemoclave/sandbox/pluginbox"
	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/tools"
)

// The PL rows of SECURITY-TESTS.md, each attempted from inside a real
// confined plugin process (testdata/attackplugin) launched by the real
// plugin manager through a plugin box, the way the daemon launches every
// plugin.

type env struct {
	t     *testing.T
	home  string
	m     *plugins.Manager
	sup   *plugins.Supervised
	calls tools.Provider
}

func setup(t *testing.T, access *pluginbox.Profile) *env {
	t.Helper()
	if abi, err := ll.LandlockGetABIVersion(); err != nil || abi < confine.DefaultMinLandlockABI {
		t.Skipf("kernel Landlock ABI %d (%v) is below %d; plugin boxes refuse to start here", abi, err, confine.DefaultMinLandlockABI)
	}
	home := t.TempDir()
	// What a daemon's home holds: PL1 and PL5 try to read them.
	for name, body := range map[string]string{"credentials.json": `{"openai":"` + canary + `"}`, "state.db": "state"} {
		if err := os.WriteFile(filepath.Join(home, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	root := filepath.Join(home, "run", "pluginbox-root")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	box := &pluginbox.Box{Launcher: exe, RootDir: root, CgroupParent: "nemoclave-pluginbox-test"}
	m, err := plugins.New(plugins.Options{Home: home, BinDir: filepath.Dir(attackBin), Box: box,
		StartTimeout: time.Minute, Logger: hclog.New(&hclog.LoggerOptions{Output: testWriter{t}, Level: hclog.Warn})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	if access == nil {
		access = &pluginbox.Profile{}
	}
	if access.Resources == (sandbox.Resources{}) {
		access.Resources = sandbox.Resources{Pids: 64, MemoryBytes: 256 << 20}
	}
	// Rootless, as the daemon does: no delegated cgroup here, so the box
	// runs without cgroup limits rather than not at all.
	access.Resources.AllowUnlimited = os.Geteuid() != 0
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sup, err := m.Start(ctx, plugins.Spec{Source: attackBin, Kind: plugin.KindTools, Name: "attack", Config: json.RawMessage(`{}`), Access: access})
	if err != nil {
		t.Fatalf("start the confined attack plugin: %v", err)
	}
	return &env{t: t, home: home, m: m, sup: sup, calls: tools.NewClient(sup.Conn())}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Logf("%s", p); return len(p), nil }

// attack runs one probe in the plugin and returns its report.
func (e *env) attack(op, target string, n int) string {
	e.t.Helper()
	got, err := e.tryAttack(op, target, n)
	if err != nil {
		e.t.Fatalf("%s %s: the call itself failed: %v", op, target, err)
	}
	return got
}

// tryAttack is attack for probes whose call may fail as part of the
// defence (the plugin's own runtime can die at the pids limit).
func (e *env) tryAttack(op, target string, n int) (string, error) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args, _ := json.Marshal(map[string]any{"op": op, "target": target, "n": n})
	res, err := e.calls.CallTool(ctx, &tools.CallRequest{Name: "attack", Arguments: args})
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, c := range res.Content {
		b.WriteString(c.Text)
	}
	e.t.Logf("%s %s → %s", op, target, b.String())
	return b.String(), nil
}

// denied asserts a probe failed with one of the expected errors.
func (e *env) denied(op, target string, want ...string) {
	e.t.Helper()
	got := e.attack(op, target, 0)
	if !strings.HasPrefix(got, "error: ") {
		e.t.Errorf("%s %s succeeded inside the box: %s", op, target, got)
		return
	}
	for _, w := range want {
		if strings.Contains(got, w) {
			return
		}
	}
	e.t.Errorf("%s %s failed, but not with %q: %s", op, target, want, got)
}

const (
	enoent  = "no such file or directory"
	eacces  = "permission denied"
	eperm   = "operation not permitted"
	esrch   = "no such process"
	refused = "connection refused"
	unreach = "network is unreachable"
)

func TestEscape_PL1_DaemonFilesAndHostSecrets(t *testing.T) {
	e := setup(t, nil)
	e.denied("read", filepath.Join(e.home, "credentials.json"), enoent, eacces)
	e.denied("read", filepath.Join(e.home, "state.db"), enoent, eacces)
	// The home's path exists inside only as the skeleton leading to the
	// plugin's state dir, on the box's private /tmp.
	if got := e.attack("list", e.home, 0); strings.HasPrefix(got, "ok") && got != "ok: state" {
		t.Errorf("the daemon's home is visible inside the box: %s", got)
	}
	// Another sandbox's workspace: any directory outside the profile.
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "secret.txt"), []byte("other sandbox"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.denied("read", filepath.Join(other, "secret.txt"), enoent, eacces)
	if home, err := os.UserHomeDir(); err == nil {
		e.denied("list", filepath.Join(home, ".ssh"), enoent, eacces)
	}
	e.denied("read", "/etc/shadow", enoent, eacces)
	e.denied("write", "/etc/nemoclave-escape", "read-only file system", eacces)
	// What it must still have: its state dir (HOME) writable, the system
	// readable, nothing else.
	state := filepath.Join(e.home, "state", "plugins", "tools.attack")
	if got := e.attack("write", filepath.Join(state, "db"), 0); !strings.HasPrefix(got, "ok") {
		t.Errorf("the plugin cannot write its own state dir: %s", got)
	}
	if got := e.attack("read", "/etc/hosts", 0); !strings.HasPrefix(got, "ok") {
		t.Errorf("the plugin cannot read the system view: %s", got)
	}
}

func TestEscape_PL2_NetworkNotNamed(t *testing.T) {
	// A plugin whose config names no address has no network at all.
	e := setup(t, nil)
	e.denied("dial_tcp", "1.1.1.1:443", unreach, refused, eacces)
	e.denied("dial_tcp", "[2606:4700:4700::1111]:443", unreach, refused, eacces)

	// A plugin whose config names one address keeps the host network with
	// connect limited to that port: another port is refused by Landlock.
	allowed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer allowed.Close()
	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	port := allowed.Addr().(*net.TCPAddr).Port
	n := setup(t, &pluginbox.Profile{Network: pluginbox.NetworkHost, Ports: []int{port}})
	if got := n.attack("dial_tcp", allowed.Addr().String(), 0); !strings.HasPrefix(got, "ok") {
		t.Errorf("the plugin cannot reach the address its config names: %s", got)
	}
	n.denied("dial_tcp", other.Addr().String(), eacces)
}

func TestEscape_PL3_DaemonAndOtherSockets(t *testing.T) {
	e := setup(t, nil)
	// The daemon's control socket lives in its home.
	sock := filepath.Join(e.home, "daemon.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	e.denied("dial_unix", sock, enoent, eacces)
	// Another plugin's go-plugin socket lives in the host's temp dir.
	tmp, err := os.MkdirTemp("", "plugin-dir")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	other, err := net.Listen("unix", filepath.Join(tmp, "plugin123"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	e.denied("dial_unix", filepath.Join(tmp, "plugin123"), enoent, eacces)
	// An abstract socket on the host.
	abs, err := net.Listen("unix", "@nemoclave-pl3-"+strconv.Itoa(os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	defer abs.Close()
	e.denied("dial_unix", "@nemoclave-pl3-"+strconv.Itoa(os.Getpid()), refused, eperm, eacces)
	// A loopback service on the host.
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	e.denied("dial_tcp", tcp.Addr().String(), unreach, refused, eacces)
}

func TestEscape_PL4_OtherProcesses(t *testing.T) {
	e := setup(t, nil)
	other := setup(t, nil)
	for _, pid := range []int{os.Getpid(), other.sup.Pid()} {
		if pid <= 0 {
			t.Fatalf("no pid for the other plugin")
		}
		p := strconv.Itoa(pid)
		e.denied("signal", p, esrch, eperm)
		e.denied("ptrace", p, esrch, eperm)
		e.denied("read", "/proc/"+p+"/environ", enoent, eacces, esrch)
	}
	// And itself: no capabilities, no_new_privs, a seccomp filter.
	caps := e.attack("caps", "", 0)
	for _, want := range []string{"CapEff:\t0000000000000000", "CapPrm:\t0000000000000000", "CapBnd:\t0000000000000000", "NoNewPrivs:\t1", "Seccomp:\t2"} {
		if !strings.Contains(caps, want) {
			t.Errorf("plugin status lacks %q:\n%s", want, caps)
		}
	}
}

func TestEscape_PL5_CredentialsNotReferenced(t *testing.T) {
	e := setup(t, nil)
	environ := e.attack("env", "", 0)
	if strings.Contains(environ, canary) || strings.Contains(environ, "OPENAI_API_KEY") {
		t.Errorf("a host credential reached the plugin's environment:\n%s", environ)
	}
	var vars []string
	if err := json.Unmarshal([]byte(strings.TrimPrefix(environ, "ok: ")), &vars); err != nil {
		t.Fatalf("environment report: %v: %s", err, environ)
	}
	for _, line := range vars {
		k, _, _ := strings.Cut(line, "=")
		switch {
		case k == "PATH", k == "HOME", k == "TMPDIR", k == "LANG", k == "TZ", k == "NEMOCLAVE_PLUGIN_LOG_LEVEL", k == "PYTHONPYCACHEPREFIX",
			k == plugin.Handshake.MagicCookieKey, strings.HasPrefix(k, "PLUGIN_"):
		default:
			t.Errorf("unexpected variable in the plugin's environment: %s", k)
		}
	}
	e.denied("read", filepath.Join(e.home, "credentials.json"), enoent, eacces)
}

func TestEscape_PL6_LimitsAndTreeGone(t *testing.T) {
	e := setup(t, &pluginbox.Profile{Resources: sandbox.Resources{Pids: 32, MemoryBytes: 128 << 20}})
	if os.Geteuid() == 0 {
		// Each sleeper is a Go process of several threads, so the limit
		// is reached after a handful; the plugin's own runtime may then
		// fail to start a thread and die ("failed to create new OS
		// thread"). Both outcomes are the limit at work; the manager
		// restarts the plugin, which the memory probe below then uses.
		got, err := e.tryAttack("forkbomb", "", 200)
		switch {
		case err != nil && strings.Contains(err.Error(), "crashed"):
			t.Logf("the plugin died at the pids limit: %v", err)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := e.sup.Ready(ctx); err != nil {
				t.Fatalf("the plugin did not come back after dying at the pids limit: %v", err)
			}
		case err != nil:
			t.Errorf("forkbomb: the call failed for another reason: %v", err)
		case !strings.HasPrefix(got, "started ") || strings.HasPrefix(got, "started 200 of 200"):
			t.Errorf("fork bomb not stopped by the pids limit: %s", got)
		}
		got = e.attack("memhog", "", 512)
		if strings.Contains(got, "allocated 512 MiB") || !strings.Contains(got, "killed") {
			t.Errorf("memory hog not stopped by the memory limit: %s", got)
		}
	} else {
		t.Log("rootless without a delegated cgroup: no pids or memory limit to test; the tree must still go")
	}
	marker := "pl6-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if got := e.attack("setsid", marker, 0); !strings.HasPrefix(got, "ok") {
		t.Fatalf("setsid child: %s", got)
	}
	if n := countMarked(marker); n != 1 {
		t.Fatalf("%d processes carry the marker before the run ends, want 1", n)
	}
	// The run ends: the manager kills its plugins.
	e.m.Close()
	deadline := time.Now().Add(30 * time.Second)
	for countMarked(marker) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the plugin's setsid child outlived the run")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// countMarked counts host processes whose command line holds marker.
func countMarked(marker string) int {
	ents, _ := os.ReadDir("/proc")
	n := 0
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), marker) {
			n++
		}
	}
	return n
}
