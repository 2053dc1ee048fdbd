package runtime

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/host/daemon"
	"github.com/nemoclave/nemoclave/policy"
	"github.com/nemoclave/nemoclave/sandbox"
)

// fakeDriver is a sandbox driver whose "agent" writes one line to its log
// and exits with exitCode as soon as it starts. It records every call, so
// the tests see what the runtime asked of it and what it left behind.
type fakeDriver struct {
	exitCode int
	// stayUp keeps each agent running until its sandbox is deleted,
	// instead of exiting at once.
	stayUp bool

	mu     sync.Mutex
	boxes  map[string]*fakeBox
	calls  []string
	failOn string // a method that fails, for the clean-up paths
	// stdin is what each sandbox created was given to read.
	stdin map[string]sandbox.StdinMode
}

type fakeBox struct {
	spec sandbox.Spec
	info sandbox.Info
	done chan struct{}
}

func newFakeDriver(code int) *fakeDriver {
	return &fakeDriver{exitCode: code, boxes: map[string]*fakeBox{}}
}

func (d *fakeDriver) note(format string, args ...any) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	call := fmt.Sprintf(format, args...)
	d.calls = append(d.calls, call)
	if d.failOn != "" && strings.HasPrefix(call, d.failOn) {
		return fmt.Errorf("fake driver: %s refused", d.failOn)
	}
	return nil
}

func (d *fakeDriver) called(prefix string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.calls {
		if strings.HasPrefix(c, prefix) {
			return true
		}
	}
	return false
}

func (d *fakeDriver) Create(_ context.Context, spec sandbox.Spec) (sandbox.Info, error) {
	if err := d.note("Create %s", spec.Name); err != nil {
		return sandbox.Info{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.boxes[spec.Name]; ok {
		return sandbox.Info{}, sandbox.ErrExists
	}
	b := &fakeBox{spec: spec, info: sandbox.Info{Name: spec.Name, Driver: "fake", State: sandbox.StateCreated, CreatedAt: time.Now()}, done: make(chan struct{})}
	d.boxes[spec.Name] = b
	if d.stdin == nil {
		d.stdin = map[string]sandbox.StdinMode{}
	}
	d.stdin[spec.Name] = spec.Stdin
	return b.info, nil
}

func (d *fakeDriver) box(name string) (*fakeBox, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	b, ok := d.boxes[name]
	if !ok {
		return nil, fmt.Errorf("%w: %s", sandbox.ErrNotFound, name)
	}
	return b, nil
}

func (d *fakeDriver) Start(_ context.Context, name string) (*sandbox.Started, error) {
	if err := d.note("Start %s", name); err != nil {
		return nil, err
	}
	b, err := d.box(name)
	if err != nil {
		return nil, err
	}
	ls := map[string]net.Listener{}
	for _, l := range b.spec.Listeners {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls[l.Name] = ln
	}
	d.mu.Lock()
	if d.stayUp {
		b.info.State, b.info.StartedAt = sandbox.StateRunning, time.Now()
	} else {
		b.info.State, b.info.ExitCode, b.info.StartedAt = sandbox.StateExited, d.exitCode, time.Now()
		close(b.done) // the agent exits at once
	}
	d.mu.Unlock()
	return &sandbox.Started{Info: b.info, Listeners: ls}, nil
}

func (d *fakeDriver) Exec(context.Context, string, sandbox.ExecRequest) (sandbox.Process, error) {
	return nil, errors.New("fake driver: no exec")
}

func (d *fakeDriver) Attach(context.Context, string, sandbox.AttachRequest) (sandbox.Terminal, error) {
	return nil, errors.New("fake driver: no attach")
}

func (d *fakeDriver) Console(context.Context, string) (sandbox.Console, error) {
	return nil, sandbox.ErrNoConsole
}

func (d *fakeDriver) Logs(_ context.Context, name string) (io.ReadCloser, error) {
	b, err := d.box(name)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(strings.NewReader("hello from " + b.spec.Command[0] + "\n")), nil
}

func (d *fakeDriver) Stop(_ context.Context, name string, _ time.Duration) error {
	return d.note("Stop %s", name)
}

func (d *fakeDriver) Delete(_ context.Context, name string) error {
	if err := d.note("Delete %s", name); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	b, ok := d.boxes[name]
	if !ok {
		return sandbox.ErrNotFound
	}
	if b.info.State == sandbox.StateRunning {
		b.info.State = sandbox.StateExited
		close(b.done) // a deleted sandbox's agent is gone
	}
	delete(d.boxes, name)
	return nil
}

func (d *fakeDriver) List(context.Context) ([]sandbox.Info, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []sandbox.Info
	for _, b := range d.boxes {
		out = append(out, b.info)
	}
	return out, nil
}

func (d *fakeDriver) UpdatePolicy(context.Context, string, *policy.Policy) error { return nil }

func (d *fakeDriver) Status(_ context.Context, name string) (sandbox.Info, error) {
	b, err := d.box(name)
	if err != nil {
		return sandbox.Info{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return b.info, nil
}

func (d *fakeDriver) Wait(ctx context.Context, name string) (sandbox.Info, error) {
	b, err := d.box(name)
	if err != nil {
		return sandbox.Info{}, err
	}
	select {
	case <-b.done:
		return d.Status(ctx, name)
	case <-ctx.Done():
		return sandbox.Info{}, ctx.Err()
	}
}

// events records a run's progress as lines.
type events struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (e *events) Step(s daemon.Step) {
	e.mu.Lock()
	defer e.mu.Unlock()
	fmt.Fprintf(&e.buf, "step %s %s %s\n", s.Phase, s.Name, s.Detail)
}

func (e *events) Output(b []byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	fmt.Fprintf(&e.buf, "output %s", b)
}

func (e *events) Console(sb string, tty bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	fmt.Fprintf(&e.buf, "console %s %v\n", sb, tty)
}

func (e *events) Exit(sb string, code int, reason string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	fmt.Fprintf(&e.buf, "exit %s %d %s\n", sb, code, reason)
}

func (e *events) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.buf.String()
}

// newRuntime is a runtime on a fresh home with the fake driver as "local"
// and credentials from creds only.
func newRuntime(t *testing.T, d sandbox.Driver, creds map[string]string) *Runtime {
	t.Helper()
	home := t.TempDir()
	r, err := New(context.Background(), Options{
		Home: home, Drivers: map[string]sandbox.Driver{"local": d}, Executable: "/bin/true", PluginBinDir: pluginDir,
		Credential: func(name string) (string, error) {
			if v, ok := creds[name]; ok {
				return v, nil
			}
			return "", fmt.Errorf("credential %s is not in the test store", name)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	return r
}

// upRuntime is a runtime over a fake driver whose sandboxes stay up until
// deleted, and a context bounding the test (5 minutes).
// r.drivers["local"] is the *fakeDriver.
func upRuntime(t *testing.T) (*Runtime, context.Context) {
	t.Helper()
	d := newFakeDriver(0)
	d.stayUp = true
	r := newRuntime(t, d, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return r, ctx
}

// runDetached runs the blueprint src in the background (run -d).
func runDetached(ctx context.Context, t *testing.T, r *Runtime, src string) {
	t.Helper()
	if err := r.Run(ctx, daemon.RunRequest{Path: writeBlueprint(t, src), Detach: true}, &events{}); err != nil {
		t.Fatal(err)
	}
}

func writeBlueprint(t *testing.T, src string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "blueprint.hcl")
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestMain builds the llm plugins the blueprints below use: a run needs an
// inference route, so a real provider plugin (replaying a cassette) is
// launched over go-plugin as in production; and a tools plugin that logs
// (testdata/logplugin), for the plugin logs.
func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.run"); f != nil && f.Value.String() == "^$" {
		os.Exit(m.Run()) // benchmarks only (go test -run '^$' -bench ...): no plugins needed
	}
	dir, err := os.MkdirTemp("", "runtime-test-plugins-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	_, file, _, _ := goruntime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	for p, pkg := range map[string]string{"llm-replay": "./plugins/llm-replay", "llm-openai": "./plugins/llm-openai", "tools-logtest": "./host/runtime/testdata/logplugin", "tools-files": "./plugins/tools-files"} {
		out, err := exec.Command("go", "build", "-C", root, "-o", filepath.Join(dir, "nemoclave-plugin-"+p), pkg).CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "build plugins/%s: %v\n%s", p, err, out)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	pluginDir = dir
	cassette = filepath.Join(root, "examples", "quickstart", "cassette.json")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var pluginDir, cassette string

// withModel adds the replay provider and one model route to a blueprint.
func withModel(src string) string {
	return fmt.Sprintf(`
plugin "llm" "replay" {
  source = "builtin/llm-replay"
  config {
    cassette = %q
    mode     = "replay"
  }
}

inference {
  default = "m"
  model "m" {
    provider = plugin.llm.replay
    model    = "replayed"
  }
}
`, cassette) + src
}

const oneAgent = `
policy "p" {
  unknown_hosts = "deny"
}

sandbox "box" {
  policy = policy.p
}

agent "a" {
  sandbox = sandbox.box
  command = ["my-agent"]
}
`

// An attached run composes the sandbox, streams the agent's output and
// exit, and cleans up after itself: driver and state both forget it.
func TestAttachedRunStreamsAndCleansUp(t *testing.T) {
	t.Parallel()
	d := newFakeDriver(7)
	r := newRuntime(t, d, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var ev events
	if err := r.Run(ctx, daemon.RunRequest{Path: writeBlueprint(t, withModel(oneAgent))}, &ev); err != nil {
		t.Fatalf("run: %v\n%s", err, ev.String())
	}
	got := ev.String()
	for _, want := range []string{
		"step done evaluate blueprint 1 plugins, 1 sandboxes, 1 agents",
		"step done launch plugins 1 running",
		"step done create sandbox box",
		"step done start agent a",
		"output hello from my-agent\n",
		"exit box 7",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("events lack %q:\n%s", want, got)
		}
	}
	if !d.called("Delete box") {
		t.Error("the sandbox was not deleted from the driver after the agent exited")
	}
	if _, err := r.GetSandbox(ctx, "box"); err == nil {
		t.Error("the sandbox is still in the state after an attached run")
	}
}

// A detached run leaves the sandbox in the state until it is deleted; a
// second run of the same sandbox name is refused with what to do.
// A re-run of a blueprint refuses to replace its own sandbox while that
// sandbox runs (naming --replace), replaces it with --replace, and replaces
// one whose agent has exited without being asked.
func TestDetachedRunAndNameInUse(t *testing.T) {
	t.Parallel()
	r, ctx := upRuntime(t)
	d := r.drivers["local"].(*fakeDriver)
	bp := writeBlueprint(t, withModel(oneAgent))
	if err := r.Run(ctx, daemon.RunRequest{Path: bp, Detach: true}, &events{}); err != nil {
		t.Fatal(err)
	}
	if s, err := r.GetSandbox(ctx, "box"); err != nil {
		t.Fatalf("detached sandbox not in the state: %v", err)
	} else if !strings.Contains(fmt.Sprint(s), "running") {
		t.Fatalf("detached sandbox: %+v, want running", s)
	}
	err := r.Run(ctx, daemon.RunRequest{Path: bp, Detach: true}, &events{})
	if err == nil || !strings.Contains(err.Error(), "--replace") || !strings.Contains(err.Error(), "is running") {
		t.Fatalf("second run while the sandbox runs: %v, want a refusal offering --replace", err)
	}
	if d.called("Delete box") {
		t.Fatal("a running sandbox was deleted without --replace")
	}
	if err := r.Run(ctx, daemon.RunRequest{Path: bp, Detach: true, Replace: true}, &events{}); err != nil {
		t.Fatalf("run --replace: %v", err)
	}
	if !d.called("Delete box") {
		t.Error("--replace did not delete the running sandbox from the driver")
	}

	// An agent that has exited: its sandbox is replaced without --replace.
	d2 := newFakeDriver(0)
	r2 := newRuntime(t, d2, nil)
	bp2 := writeBlueprint(t, withModel(oneAgent))
	for i := 0; i < 2; i++ {
		if err := r2.Run(ctx, daemon.RunRequest{Path: bp2, Detach: true}, &events{}); err != nil {
			t.Fatalf("run %d of a blueprint whose agent exited: %v", i+1, err)
		}
	}
	if !d2.called("Delete box") {
		t.Error("the exited sandbox was not replaced")
	}
	if _, err := r2.DeleteSandbox(ctx, "box"); err != nil {
		t.Fatal(err)
	}
}

// What the blueprint language can check without a running sandbox is
// refused before anything starts: the driver never sees a Create.
func TestRunRefusesBeforeStarting(t *testing.T) {
	t.Parallel()
	cases := map[string]struct{ src, want string }{
		"driver the daemon lacks": {strings.Replace(oneAgent, "policy = policy.p\n}", "policy = policy.p\n  driver = \"kubernetes\"\n}", 1), "Sandbox driver not available"},
		"two agents in one sandbox": {oneAgent + `
agent "b" {
  sandbox = sandbox.box
  command = ["my-agent"]
}
`, "Sandbox already used by another agent"},
		"invalid sandbox name": {strings.NewReplacer(`"box"`, `"Big_Box"`, "sandbox.box", "sandbox.Big_Box").Replace(oneAgent), "Invalid sandbox name"},
		"missing credential": {`
plugin "llm" "nim" {
  source = "builtin/llm-openai"
  config {
    api_key = credential("ABSENT_KEY")
  }
}
` + oneAgent, "Credential not found"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d := newFakeDriver(0)
			r := newRuntime(t, d, nil)
			var ev events
			err := r.Run(context.Background(), daemon.RunRequest{Path: writeBlueprint(t, c.src)}, &ev)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "nemoclave validate") {
				t.Fatalf("run: %v, want an error with %q pointing at validate", err, c.want)
			}
			if d.called("Create") {
				t.Error("the driver was asked to create a sandbox")
			}
		})
	}
}

// A sandbox whose creation fails leaves nothing running and nothing in
// the state.
func TestFailedCreateCleansUp(t *testing.T) {
	t.Parallel()
	d := newFakeDriver(0)
	d.failOn = "Create"
	r := newRuntime(t, d, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var ev events
	err := r.Run(ctx, daemon.RunRequest{Path: writeBlueprint(t, withModel(oneAgent))}, &ev)
	if err == nil || !strings.Contains(err.Error(), "create sandbox box") {
		t.Fatalf("run: %v", err)
	}
	if !strings.Contains(ev.String(), "step failed create sandbox box") {
		t.Errorf("no failed step reported:\n%s", ev.String())
	}
	if _, err := r.GetSandbox(ctx, "box"); err == nil {
		t.Error("a sandbox that failed to create is in the state")
	}
	r.mu.Lock()
	n := len(r.runs)
	r.mu.Unlock()
	if n != 0 {
		t.Errorf("%d runs still registered after a failed start", n)
	}
}

// twoAgents is oneAgent with a second agent in a sandbox of its own.
const twoAgents = oneAgent + `
sandbox "box2" {
  policy = policy.p
}

agent "b" {
  sandbox = sandbox.box2
  command = ["my-agent"]
}
`

// An attached run with several agents forwards its input to the one
// --attach-agent names (the first without it), says so with the others'
// names, and refuses an agent the blueprint lacks before anything starts.
func TestAttachAgentChoosesTheInput(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bp := writeBlueprint(t, withModel(twoAgents))
	for _, c := range []struct{ attach, reads, idle string }{{"", "box", "box2"}, {"b", "box2", "box"}, {"box", "box", "box2"}} {
		d := newFakeDriver(0)
		r := newRuntime(t, d, nil)
		var ev events
		if err := r.Run(ctx, daemon.RunRequest{Path: bp, Stdin: "pipe", AttachAgent: c.attach}, &ev); err != nil {
			t.Fatalf("run --attach-agent %q: %v\n%s", c.attach, err, ev.String())
		}
		d.mu.Lock()
		reads, idle := d.stdin[c.reads], d.stdin[c.idle]
		d.mu.Unlock()
		if reads != sandbox.StdinPipe || idle != sandbox.StdinNull {
			t.Errorf("--attach-agent %q: %s reads %q, %s reads %q; want the pipe for %s only", c.attach, c.reads, reads, c.idle, idle, c.reads)
		}
		want := fmt.Sprintf("step done input goes to agent %s in sandbox %s", map[string]string{"box": "a", "box2": "b"}[c.reads], c.reads)
		if got := ev.String(); !strings.Contains(got, want) || !strings.Contains(got, "--attach-agent NAME") || !strings.Contains(got, "(sandbox "+c.idle+") read no input") {
			t.Errorf("--attach-agent %q: the run does not say where the input goes (want %q):\n%s", c.attach, want, got)
		}
	}

	d := newFakeDriver(0)
	r := newRuntime(t, d, nil)
	err := r.Run(ctx, daemon.RunRequest{Path: bp, Stdin: "pipe", AttachAgent: "c"}, &events{})
	if err == nil || !strings.Contains(err.Error(), "no agent of that name") || !strings.Contains(err.Error(), "a, b") {
		t.Errorf("--attach-agent c: %v, want a refusal naming the agents a, b", err)
	}
	err = r.Run(ctx, daemon.RunRequest{Path: bp, Detach: true, AttachAgent: "b"}, &events{})
	if err == nil || !strings.Contains(err.Error(), "attached runs") {
		t.Errorf("-d --attach-agent b: %v, want a refusal", err)
	}
	if d.called("Create") {
		t.Error("a refused --attach-agent created a sandbox")
	}
}
