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

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/nemoclave/nemoclave/host/api/daemonpb"
	"github.com/nemoclave/nemoclave/policy"
)

func mustStruct(t *testing.T, doc string) *structpb.Struct {
	t.Helper()
	s, err := JSONStruct([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

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

func (b *fakeBackend) ListSandboxes(context.Context) ([]*pb.Sandbox, error) {
	return []*pb.Sandbox{{Name: "box", State: "running", ExitCode: proto.Int32(0), Ports: map[string]int32{"http": 8080},
		CreatedAt: timestamppb.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))}}, nil
}

func (b *fakeBackend) GetSandbox(_ context.Context, name string) (*pb.Sandbox, error) {
	switch name {
	case "box":
		detail, err := JSONStruct([]byte(`{"pod":"box-0","restarts":2}`))
		return &pb.Sandbox{Name: name, Detail: detail}, err
	case "silent":
		return nil, nil // a buggy backend: neither an answer nor an error
	}
	return nil, fmt.Errorf("sandbox %q not found; list them with `nemoclave sandbox list`", name)
}

func (b *fakeBackend) DeleteSandbox(_ context.Context, name string) (*pb.DeleteSandboxResponse, error) {
	b.record("DeleteSandbox %s", name)
	return &pb.DeleteSandboxResponse{Deleted: name}, nil
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

func (b *fakeBackend) GetPolicy(_ context.Context, sandbox, view string) (*pb.GetPolicyResponse, error) {
	doc, err := PolicyStruct(&policy.Policy{Name: "p-" + sandbox, Revision: 3, UnknownHosts: "ask", Presets: []string{"pypi"}})
	return &pb.GetPolicyResponse{Sandbox: sandbox, View: view, Policy: doc, Grants: []string{"example.com"}}, err
}

func (b *fakeBackend) SetPolicy(_ context.Context, sandbox string, policyJSON []byte, presets []string) (*pb.SetPolicyResponse, error) {
	b.record("SetPolicy %s %s %v", sandbox, policyJSON, presets)
	return &pb.SetPolicyResponse{Sandbox: sandbox, Revision: 2, Hosts: []string{"pypi.org"}}, nil
}

func (b *fakeBackend) ListApprovals(_ context.Context, sandbox string) ([]*pb.Approval, error) {
	return []*pb.Approval{{Id: sandbox + "-1", Sandbox: sandbox, Host: "example.com", Port: 443}}, nil
}

func (b *fakeBackend) WatchApprovals(_ context.Context, sandbox string, send func([]*pb.Approval) error) error {
	for i := range 2 {
		list := []*pb.Approval{}
		for j := range i {
			list = append(list, &pb.Approval{Id: fmt.Sprintf("%s-%d", sandbox, j), Sandbox: sandbox})
		}
		if err := send(list); err != nil {
			return err
		}
	}
	return nil
}

func (b *fakeBackend) AnswerApproval(_ context.Context, id string, allow bool, scope string) (*pb.ApprovalAnswer, error) {
	b.record("AnswerApproval %s %v %s", id, allow, scope)
	return &pb.ApprovalAnswer{Id: 9, Sandbox: "box", Decision: "allow", Scope: scope}, nil
}

func (b *fakeBackend) InferenceStatus(_ context.Context, sandbox string) (*pb.InferenceStatusResponse, error) {
	return &pb.InferenceStatusResponse{
		Default: &pb.InferenceDefault{Provider: "nvidia", Model: "m"},
		Live: []*pb.SandboxInference{{Sandbox: sandbox, Default: "default", Routes: []*pb.Route{{Alias: "default", Provider: "plugin.llm.nvidia", Model: "m"}},
			Usage: &pb.BudgetStatus{TokensToday: 1 << 40}}},
		UsageToday: []*pb.UsageTotal{{Sandbox: sandbox, Requests: 2, InputTokens: 101, CostUsd: 0.5}},
	}, nil
}

func (b *fakeBackend) InferenceSet(_ context.Context, sandbox, provider, model string) (*pb.InferenceSetResponse, error) {
	b.record("InferenceSet %s %s %s", sandbox, provider, model)
	return &pb.InferenceSetResponse{Sandboxes: []string{sandbox}, Provider: "plugin.llm." + provider, Model: model}, nil
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

	// Every answer arrives as the message the backend built.
	same := func(what string, got, want proto.Message, err error) {
		t.Helper()
		if err != nil || !proto.Equal(got, want) {
			t.Errorf("%s: got %v (%v), want %v", what, got, err, want)
		}
	}
	list, err := c.ListSandboxes(ctx)
	wantList, _ := b.ListSandboxes(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("ListSandboxes: %v %v", list, err)
	}
	same("ListSandboxes", list[0], wantList[0], nil)
	sb, err := c.GetSandbox(ctx, "box")
	same("GetSandbox", sb, &pb.Sandbox{Name: "box", Detail: mustStruct(t, `{"pod":"box-0","restarts":2}`)}, err)
	del, err := c.DeleteSandbox(ctx, "box")
	same("DeleteSandbox", del, &pb.DeleteSandboxResponse{Deleted: "box"}, err)
	b.saw(t, "DeleteSandbox box")
	pol, err := c.GetPolicy(ctx, "box", "effective")
	if err != nil || pol.Sandbox != "box" || pol.View != "effective" || fmt.Sprint(pol.Grants) != "[example.com]" {
		t.Errorf("GetPolicy: %v %v", pol, err)
	}
	if p, err := PolicyFromStruct(pol.GetPolicy()); err != nil || p.Name != "p-box" || p.Revision != 3 || p.UnknownHosts != "ask" || fmt.Sprint(p.Presets) != "[pypi]" {
		t.Errorf("the policy document did not survive the trip: %+v %v", p, err)
	}
	apprs, err := c.ListApprovals(ctx, "box")
	if err != nil || len(apprs) != 1 {
		t.Fatalf("ListApprovals: %v %v", apprs, err)
	}
	same("ListApprovals", apprs[0], &pb.Approval{Id: "box-1", Sandbox: "box", Host: "example.com", Port: 443}, nil)
	inf, err := c.InferenceStatus(ctx, "box")
	wantInf, _ := b.InferenceStatus(ctx, "box")
	same("InferenceStatus", inf, wantInf, err)
	if got := inf.Live[0].Usage.TokensToday; got != 1<<40 {
		t.Errorf("an int64 beyond 32 bits arrived as %d", got)
	}

	// The backend's message reaches the user verbatim: it says what to do.
	if _, err := c.GetSandbox(ctx, "nope"); err == nil || err.Error() != "sandbox \"nope\" not found; list them with `nemoclave sandbox list`" {
		t.Errorf("backend error: %v", err)
	}
	// A backend that answers nothing is reported, not sent as an empty
	// sandbox.
	if s, err := c.GetSandbox(ctx, "silent"); err == nil || !strings.Contains(err.Error(), "answered nothing") {
		t.Errorf("nil answer: %v %v", s, err)
	}

	set, err := c.SetPolicy(ctx, "box", []byte(`{"network":[]}`), []string{"pypi"})
	same("SetPolicy", set, &pb.SetPolicyResponse{Sandbox: "box", Revision: 2, Hosts: []string{"pypi.org"}}, err)
	b.saw(t, `SetPolicy box {"network":[]} [pypi]`)
	ans, err := c.AnswerApproval(ctx, "a1", true, "session")
	same("AnswerApproval", ans, &pb.ApprovalAnswer{Id: 9, Sandbox: "box", Decision: "allow", Scope: "session"}, err)
	b.saw(t, "AnswerApproval a1 true session")
	infSet, err := c.InferenceSet(ctx, "box", "nvidia", "big")
	same("InferenceSet", infSet, &pb.InferenceSetResponse{Sandboxes: []string{"box"}, Provider: "plugin.llm.nvidia", Model: "big"}, err)
	b.saw(t, "InferenceSet box nvidia big")

	var watched []string
	if err := c.WatchApprovals(ctx, "box", func(l []*pb.Approval) {
		ids := []string{}
		for _, a := range l {
			ids = append(ids, a.Id)
		}
		watched = append(watched, strings.Join(ids, ","))
	}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"", "box-0"}; fmt.Sprintf("%q", watched) != fmt.Sprintf("%q", want) {
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
