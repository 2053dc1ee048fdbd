package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeBackend answers every RPC from memory and records what reached it,
// so the tests see exactly what crossed the socket in each direction.
type fakeBackend struct {
	mu     sync.Mutex
	calls  []string
	closed bool
}

func (b *fakeBackend) record(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, fmt.Sprintf(format, args...))
}

func (b *fakeBackend) Run(_ context.Context, req RunRequest, ev RunEvents) error {
	b.record("Run %s detach=%v var=%s", req.Path, req.Detach, req.Vars["x"])
	if req.Path == "broken.hcl" {
		return errors.New("the blueprint has errors (run `nemoclave validate broken.hcl`)")
	}
	ev.Step(Step{Name: "evaluate blueprint", Phase: "start"})
	ev.Step(Step{Name: "evaluate blueprint", Phase: "done", DurationMS: 7, Detail: "1 sandbox"})
	ev.Output([]byte("hello from the agent\n"))
	ev.Exit("box", 3, "agent exited")
	return nil
}

func (b *fakeBackend) ListSandboxes(context.Context) (any, error) {
	return []map[string]string{{"name": "box", "state": "running"}}, nil
}

func (b *fakeBackend) GetSandbox(_ context.Context, name string) (any, error) {
	if name != "box" {
		return nil, fmt.Errorf("sandbox %q not found; list them with `nemoclave sandbox list`", name)
	}
	return map[string]string{"name": name}, nil
}

func (b *fakeBackend) DeleteSandbox(_ context.Context, name string) (any, error) {
	b.record("DeleteSandbox %s", name)
	return map[string]bool{"deleted": true}, nil
}

// Exec upper-cases stdin to stdout, notes the size it was given on
// stderr, and exits with the number of bytes read.
func (b *fakeBackend) Exec(_ context.Context, req ExecRequest, eio ExecIO) (int, error) {
	b.record("Exec %s %v tty=%v %dx%d env=%s", req.Sandbox, req.Command, req.TTY, req.Rows, req.Cols, req.Env["K"])
	in, err := io.ReadAll(eio.Stdin)
	if err != nil {
		return -1, err
	}
	fmt.Fprint(eio.Stdout, strings.ToUpper(string(in)))
	fmt.Fprint(eio.Stderr, "done")
	return len(in), nil
}

func (b *fakeBackend) Logs(_ context.Context, req LogsRequest, w io.Writer) error {
	b.record("Logs %s %s follow=%v tail=%d", req.Sandbox, req.Source, req.Follow, req.Tail)
	for i := range 3 {
		fmt.Fprintf(w, "line %d\n", i)
	}
	return nil
}

func (b *fakeBackend) GetPolicy(_ context.Context, sandbox, view string) (any, error) {
	return map[string]string{"sandbox": sandbox, "view": view}, nil
}

func (b *fakeBackend) SetPolicy(_ context.Context, sandbox string, policyJSON []byte, presets []string) (any, error) {
	b.record("SetPolicy %s %s %v", sandbox, policyJSON, presets)
	return map[string]int{"revision": 2}, nil
}

func (b *fakeBackend) ListApprovals(_ context.Context, sandbox string) (any, error) {
	return []string{sandbox + "-1"}, nil
}

func (b *fakeBackend) WatchApprovals(_ context.Context, sandbox string, send func(any) error) error {
	for i := range 2 {
		if err := send(map[string]any{"sandbox": sandbox, "n": i}); err != nil {
			return err
		}
	}
	return nil
}

func (b *fakeBackend) AnswerApproval(_ context.Context, id string, allow bool, scope string) (any, error) {
	b.record("AnswerApproval %s %v %s", id, allow, scope)
	return map[string]string{"id": id}, nil
}

func (b *fakeBackend) InferenceStatus(_ context.Context, sandbox string) (any, error) {
	return map[string]string{"sandbox": sandbox, "model": "m"}, nil
}

func (b *fakeBackend) InferenceSet(_ context.Context, sandbox, provider, model string) (any, error) {
	b.record("InferenceSet %s %s %s", sandbox, provider, model)
	return map[string]string{"model": model}, nil
}

func (b *fakeBackend) Close(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return nil
}

// Attach echoes input back upper-cased as output, reports every resize
// and the end of input as output lines, and exits 7 on "exit".
func (b *fakeBackend) Attach(ctx context.Context, req AttachRequest, in <-chan AttachInput, ev AttachEvents) error {
	b.record("Attach %s %dx%d output=%v tail=%d", req.Sandbox, req.Rows, req.Cols, req.Output, req.Tail)
	if req.Sandbox == "missing" {
		return errors.New("sandbox not found: missing")
	}
	ev.Ready(true)
	for {
		select {
		case m, ok := <-in:
			if !ok {
				b.record("Attach client gone")
				return nil
			}
			switch {
			case m.Detach:
				b.record("Attach detach")
				ev.Detached()
				return nil
			case m.Resize != nil:
				ev.Output(fmt.Appendf(nil, "resize %dx%d\n", m.Resize[0], m.Resize[1]))
			case m.CloseStdin:
				ev.Output([]byte("eof\n"))
			case string(m.Stdin) == "exit":
				ev.Exit(7, "asked to")
				return nil
			default:
				ev.Output(bytes.ToUpper(m.Stdin))
			}
		case <-ctx.Done():
			return nil
		}
	}
}

func (b *fakeBackend) saw(t *testing.T, want string) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.calls {
		if c == want {
			return
		}
	}
	t.Errorf("the backend never saw %q; it saw %q", want, b.calls)
}

// serve starts a daemon endpoint on a fresh home and returns a client;
// the returned channel yields Serve's result.
func serve(t *testing.T, b Backend) (string, *Client, <-chan error) {
	t.Helper()
	home := t.TempDir()
	srv, err := Listen(home, b)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		done <- srv.Serve(ctx)
		close(finished)
	}()
	t.Cleanup(func() {
		cancel()
		<-finished // a test may have taken Serve's result from done
	})
	c, err := Connect(context.Background(), home, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return home, c, done
}

type recordedEvents struct {
	buf bytes.Buffer
}

func (r *recordedEvents) Step(s Step) {
	fmt.Fprintf(&r.buf, "step %s %s %d %s\n", s.Name, s.Phase, s.DurationMS, s.Detail)
}
func (r *recordedEvents) Output(b []byte) { fmt.Fprintf(&r.buf, "output %s", b) }
func (r *recordedEvents) Exit(sb string, code int, reason string) {
	fmt.Fprintf(&r.buf, "exit %s %d %s\n", sb, code, reason)
}
func (r *recordedEvents) Console(sb string, tty bool) {
	fmt.Fprintf(&r.buf, "console %s %v\n", sb, tty)
}

func TestRPCsOverTheSocket(t *testing.T) {
	t.Parallel()
	b := &fakeBackend{}
	home, c, _ := serve(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Only the owner may reach the control socket.
	for path, want := range map[string]os.FileMode{SocketPath(home): 0o600, filepath.Dir(SocketPath(home)): 0o700} {
		if st, err := os.Stat(path); err != nil || st.Mode().Perm() != want {
			t.Errorf("%s: mode %v (%v), want %v", path, st.Mode().Perm(), err, want)
		}
	}

	p, err := c.Ping(ctx)
	if err != nil || p.Home != home || int(p.Pid) != os.Getpid() {
		t.Fatalf("ping: %+v %v", p, err)
	}

	calls := []struct {
		method, arg string
		extra       []string
		want        string
	}{
		{"ListSandboxes", "", nil, `[{"name":"box","state":"running"}]`},
		{"GetSandbox", "box", nil, `{"name":"box"}`},
		{"DeleteSandbox", "box", nil, `{"deleted":true}`},
		{"GetPolicy", "box", []string{"effective"}, `{"sandbox":"box","view":"effective"}`},
		{"ListApprovals", "box", nil, `["box-1"]`},
		{"InferenceStatus", "box", nil, `{"model":"m","sandbox":"box"}`},
	}
	for _, tc := range calls {
		got, err := c.Call(ctx, tc.method, tc.arg, tc.extra...)
		if err != nil || string(got) != tc.want {
			t.Errorf("%s: %s %v, want %s", tc.method, got, err, tc.want)
		}
	}
	b.saw(t, "DeleteSandbox box")
	if _, err := c.Call(ctx, "Frobnicate", ""); err == nil || !strings.Contains(err.Error(), `unknown call "Frobnicate"`) {
		t.Errorf("unknown call: %v", err)
	}
	// The backend's message reaches the user verbatim: it says what to do.
	if _, err := c.Call(ctx, "GetSandbox", "nope"); err == nil || err.Error() != "sandbox \"nope\" not found; list them with `nemoclave sandbox list`" {
		t.Errorf("backend error: %v", err)
	}

	if got, err := c.SetPolicy(ctx, "box", []byte(`{"network":[]}`), []string{"pypi"}); err != nil || string(got) != `{"revision":2}` {
		t.Errorf("SetPolicy: %s %v", got, err)
	}
	b.saw(t, `SetPolicy box {"network":[]} [pypi]`)
	if _, err := c.AnswerApproval(ctx, "a1", true, "session"); err != nil {
		t.Error(err)
	}
	b.saw(t, "AnswerApproval a1 true session")
	if _, err := c.InferenceSet(ctx, "box", "nvidia", "big"); err != nil {
		t.Error(err)
	}
	b.saw(t, "InferenceSet box nvidia big")

	var watched []string
	if err := c.WatchApprovals(ctx, "box", func(j []byte) { watched = append(watched, string(j)) }); err != nil {
		t.Fatal(err)
	}
	if want := []string{`{"n":0,"sandbox":"box"}`, `{"n":1,"sandbox":"box"}`}; fmt.Sprint(watched) != fmt.Sprint(want) {
		t.Errorf("watch: %q, want %q", watched, want)
	}

	var logs bytes.Buffer
	if err := c.Logs(ctx, LogsRequest{Sandbox: "box", Source: "agent", Follow: true, Tail: 5}, &logs); err != nil || logs.String() != "line 0\nline 1\nline 2\n" {
		t.Errorf("logs: %q %v", logs.String(), err)
	}
	b.saw(t, "Logs box agent follow=true tail=5")
}

func TestRunStreamsEventsInOrder(t *testing.T) {
	t.Parallel()
	b := &fakeBackend{}
	_, c, _ := serve(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var ev recordedEvents
	if err := c.Run(ctx, RunRequest{Path: "bp.hcl", Vars: map[string]string{"x": "1"}, Detach: true}, &ev); err != nil {
		t.Fatal(err)
	}
	want := "step evaluate blueprint start 0 \nstep evaluate blueprint done 7 1 sandbox\noutput hello from the agent\nexit box 3 agent exited\n"
	if ev.buf.String() != want {
		t.Errorf("events:\n%s\nwant:\n%s", ev.buf.String(), want)
	}
	b.saw(t, "Run bp.hcl detach=true var=1")
	err := c.Run(ctx, RunRequest{Path: "broken.hcl"}, &recordedEvents{})
	if err == nil || err.Error() != "the blueprint has errors (run `nemoclave validate broken.hcl`)" {
		t.Errorf("failed run: %v", err)
	}
}

func TestExecStreamsBothWays(t *testing.T) {
	t.Parallel()
	b := &fakeBackend{}
	_, c, _ := serve(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code, err := c.Exec(ctx, ExecRequest{Sandbox: "box", Command: []string{"sh"}, TTY: true, Rows: 24, Cols: 80, Env: map[string]string{"K": "v"}},
		ExecIO{Stdin: strings.NewReader("make it loud"), Stdout: &stdout, Stderr: &stderr})
	if err != nil || code != len("make it loud") || stdout.String() != "MAKE IT LOUD" || stderr.String() != "done" {
		t.Fatalf("exec: code %d err %v stdout %q stderr %q", code, err, stdout.String(), stderr.String())
	}
	b.saw(t, "Exec box [sh] tty=true 24x80 env=v")
}

// Shutdown stops serving, closes the backend (every sandbox and plugin)
// and removes the socket, so the next Connect says the daemon is gone.
func TestShutdownClosesTheBackend(t *testing.T) {
	t.Parallel()
	b := &fakeBackend{}
	home, c, done := serve(t, b)
	if err := c.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("the daemon did not stop after Shutdown")
	}
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if !closed {
		t.Error("the backend was not closed")
	}
	if _, err := os.Stat(SocketPath(home)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left behind: %v", err)
	}
	if _, err := Connect(context.Background(), home, false); !errors.Is(err, ErrNotRunning) {
		t.Errorf("connect after shutdown: %v, want ErrNotRunning", err)
	}
}

// A second daemon never takes over a live one's socket, but a stale
// socket file of a dead one is replaced.
func TestListenRefusesALiveDaemon(t *testing.T) {
	t.Parallel()
	home, _, _ := serve(t, &fakeBackend{})
	if _, err := Listen(home, &fakeBackend{}); err == nil || !strings.Contains(err.Error(), "already serving") || !strings.Contains(err.Error(), "nemoclave daemon stop") {
		t.Fatalf("second Listen: %v", err)
	}

	stale := t.TempDir()
	if err := os.MkdirAll(filepath.Join(stale, "run"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(SocketPath(stale), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	srv, err := Listen(stale, &fakeBackend{})
	if err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	c, err := Connect(context.Background(), stale, false)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
