package plugins

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"

	"github.com/nemoclave/nemoclave/sandbox"
	"github.com/nemoclave/nemoclave/sandbox/confine"
	"github.com/nemoclave/nemoclave/sandbox/pluginbox"
	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/sdktest"
	"github.com/nemoclave/nemoclave/sdk/tools"
)

// pythonExample is the Python plugin in examples/, a directory plugin
// (the script and its nemoclave_plugin package).
const pythonExample = "../../examples/python-tools"

// needPython skips when Debian's Python gRPC packages are missing: the
// example is written against them (make test installs them, see .ci/run).
func needPython(t *testing.T) {
	t.Helper()
	out, err := exec.Command("/usr/bin/python3", "-c", "import grpc, google.protobuf, cryptography").CombinedOutput()
	if err != nil {
		t.Skipf("the Python plugin needs /usr/bin/python3 with grpcio, protobuf and cryptography (apt-get install -y python3-grpcio python3-protobuf python3-cryptography): %v: %s", err, out)
	}
}

// boxedManager is a Manager that starts every plugin in a plugin box, as
// the daemon does; this test binary is the box's init (TestMain calls
// pluginbox.MaybeInit).
func boxedManager(t *testing.T) (*Manager, *syncBuffer) {
	t.Helper()
	return boxedManagerIn(t, "")
}

// boxedManagerIn is boxedManager over the built-in plugins in binDir
// (empty: the test binary as the helper plugin).
func boxedManagerIn(t *testing.T, binDir string) (*Manager, *syncBuffer) {
	t.Helper()
	if abi, err := ll.LandlockGetABIVersion(); err != nil || abi < confine.DefaultMinLandlockABI {
		t.Skipf("kernel Landlock ABI %d (%v) is below %d; plugin boxes refuse to start here", abi, err, confine.DefaultMinLandlockABI)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	// Readable by every uid: a rootless box maps the caller to its own user.
	_ = os.Chmod(home, 0o755)
	root := filepath.Join(home, "run", "pluginbox-root")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	m, logs := testManager(t, Options{Home: home, BinDir: binDir, Box: &pluginbox.Box{Launcher: exe, RootDir: root,
		CgroupParent: "nemoclave-plugins-test-" + filepath.Base(home)}})
	t.Cleanup(func() {
		if t.Failed() || testing.Verbose() {
			t.Logf("host log:\n%s", logs)
		}
	})
	return m, logs
}

// boxAccess is the profile of the example's box: nothing beyond its own
// files and state dir, no network, small limits (unlimited rootless,
// where no cgroup is delegated).
func boxAccess() *pluginbox.Profile {
	return &pluginbox.Profile{Resources: sandbox.Resources{Pids: 64, MemoryBytes: 512 << 20, AllowUnlimited: os.Geteuid() != 0}}
}

// TestPythonPlugin installs examples/python-tools by address, runs the
// conformance suites against it through the host's real launch path (a
// plugin box), and uses it supervised: the acceptance of a non-Go plugin.
func TestPythonPlugin(t *testing.T) {
	needPython(t)
	m, logs := boxedManager(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// Installed and probed as the CLI does, outside a box (a box without
	// a profile has cgroup limits, which an ordinary user cannot set up).
	plain, _ := testManager(t, Options{Home: m.opts.Home})
	if _, err := plain.Install(ctx, InstallRequest{Address: "example.com/acme/pywordcount", Path: pythonExample, Version: "0.1.0"}); err != nil {
		t.Fatalf("install the Python plugin: %v", err)
	}
	b, err := m.Resolve("example.com/acme/pywordcount")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Every stop went through GRPCController.Shutdown: a plugin
		// without it is killed after 2 s with this warning.
		m.Close()
		if strings.Contains(logs.String(), "failed to exit gracefully") {
			t.Error("the Python plugin did not exit on the host's Shutdown request")
		}
	})
	if b.Root == "" || filepath.Base(b.Path) != "nemoclave-plugin-pywordcount" {
		t.Fatalf("installed as %+v; want a directory plugin with its script as the entry", b)
	}

	t.Run("conformance", func(t *testing.T) {
		launch := func(ctx context.Context, t *testing.T, _ string) (*plugin.Launched, error) {
			return m.Launch(ctx, b, Spec{Kind: plugin.KindTools, Name: "conformance", StateDir: t.TempDir(), Access: boxAccess()})
		}
		sdktest.RunBinary(t, b.Path, sdktest.WithLauncher(launch),
			sdktest.WithToolSample("wordcount", `{"text":"one two three"}`),
			sdktest.WithToolSample("top_words", `{"text":"a b a c a b","n":2}`))
	})

	t.Run("supervised", func(t *testing.T) {
		s, err := m.Start(ctx, Spec{Source: "example.com/acme/pywordcount", Kind: plugin.KindTools, Name: "words",
			Config: json.RawMessage(`{"min_length":4}`), Access: boxAccess()})
		if err != nil {
			t.Fatalf("start: %v", err)
		}
		self, _ := os.Readlink("/proc/self/ns/pid")
		theirs, err := os.Readlink(filepathJoinProc(s.Pid(), "ns/pid"))
		if err != nil || theirs == self {
			t.Errorf("the plugin (pid %d) shares the host's pid namespace (%s, %v): it is not boxed", s.Pid(), theirs, err)
		}
		res, err := s.Tools().CallTool(ctx, &tools.CallRequest{Name: "wordcount", Arguments: json.RawMessage(`{"text":"a longer sentence"}`)})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Content) != 1 || res.Content[0].Text != "2 words" || res.IsError {
			t.Errorf("wordcount with min_length 4 = %+v, want \"2 words\"", res)
		}
		res, err = s.Tools().CallTool(ctx, &tools.CallRequest{Name: "wordcount", Arguments: json.RawMessage(`{"txt":1}`)})
		if err != nil || !res.IsError {
			t.Errorf("wordcount with bad arguments = %+v, %v; want a tool error the model sees", res, err)
		}
		launched, _, err := plain.Client(ctx, "example.com/acme/pywordcount")
		if err != nil {
			t.Fatal(err)
		}
		diags, err := launched.ValidateConfig(ctx, json.RawMessage(`{"min_length":0}`))
		if err != nil || len(diags) != 1 || strings.Join(diags[0].Path, ".") != "min_length" {
			t.Errorf("ValidateConfig(min_length 0) = %+v, %v; want one diagnostic at min_length", diags, err)
		}
	})
}

func filepathJoinProc(pid int, rel string) string {
	return filepath.Join("/proc", strconv.Itoa(pid), rel)
}

// TestPythonStubsCurrent regenerates the example's protobuf modules from
// the SDK's protos and compares them with the committed ones: a proto
// change must be followed by examples/python-tools/gen.sh.
func TestPythonStubsCurrent(t *testing.T) {
	if _, err := exec.LookPath("protoc"); err != nil {
		t.Skip("protoc is not installed (apt-get install -y protobuf-compiler); cannot check examples/python-tools/nemoclave_plugin/pb")
	}
	out := filepath.Join(t.TempDir(), "pb")
	if b, err := exec.Command("sh", filepath.Join(pythonExample, "gen.sh"), out).CombinedOutput(); err != nil {
		t.Fatalf("gen.sh: %v\n%s", err, b)
	}
	committed := filepath.Join(pythonExample, "nemoclave_plugin", "pb")
	seen := map[string]bool{}
	err := filepath.WalkDir(out, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(out, p)
		seen[rel] = true
		want, _ := os.ReadFile(p)
		got, err := os.ReadFile(filepath.Join(committed, rel))
		if err != nil || string(got) != string(want) {
			t.Errorf("%s is missing or stale; run examples/python-tools/gen.sh and commit the result", filepath.Join(committed, rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = filepath.WalkDir(committed, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".py") {
			if rel, _ := filepath.Rel(committed, p); !seen[rel] {
				t.Errorf("%s is not generated from any proto; run examples/python-tools/gen.sh", p)
			}
		}
		return nil
	})
}

// TestPythonPluginUnboxedKeepsItsHash: run unconfined (as the CLI's
// install probe and inspect do), the interpreter writes no bytecode into
// the installed directory, so the next launch still matches its hash.
func TestPythonPluginUnboxedKeepsItsHash(t *testing.T) {
	needPython(t)
	m, _ := testManager(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, err := m.Install(ctx, InstallRequest{Address: "example.com/acme/pywordcount", Path: pythonExample, Version: "0.1.0"})
	if err != nil {
		t.Fatalf("install: %v", err)
	}
	for i := range 2 {
		l, err := m.Launch(ctx, b, Spec{Kind: plugin.KindTools, Name: "unboxed"})
		if err != nil {
			t.Fatalf("launch %d: %v", i+1, err)
		}
		if _, err := l.Info(ctx); err != nil {
			t.Fatal(err)
		}
		l.Kill()
	}
	_ = filepath.WalkDir(b.Root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == "__pycache__" {
			t.Errorf("the interpreter wrote %s into the installed plugin", p)
		}
		return nil
	})
}
