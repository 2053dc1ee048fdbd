package plugins

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/sdk/embeddings"
	"github.com/nemoclave/nemoclave/sdk/llm"
	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/status"
)

func embedOne(ctx context.Context, e embeddings.Embedder, model, in string) ([]float32, error) {
	resp, err := e.Embed(ctx, &embeddings.EmbedRequest{Model: model, Inputs: []string{in}})
	if err != nil {
		return nil, err
	}
	return resp.Vectors[0], nil
}

// TestCrashMidCall kills the plugin inside a call: that call fails with
// Unavailable "plugin X crashed; restarting", a new process is launched and
// reconfigured with the last config, and the next call works.
func TestCrashMidCall(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, _ := testManager(t, Options{HealthInterval: time.Hour, RestartBackoff: 50 * time.Millisecond})
	spec := helperSpec("serve")
	spec.Config = []byte(`{"scale":3}`)
	s, err := m.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	e := s.Embeddings() // built once, must survive the restart
	before, err := embedOne(ctx, e, "", "hello")
	if err != nil {
		t.Fatal(err)
	}
	firstPid := s.Pid()

	_, err = embedOne(ctx, e, "", "crash")
	if status.CodeOf(err) != status.Unavailable || !strings.Contains(err.Error(), "plugin embeddings.test crashed; restarting") {
		t.Fatalf("crashing call: %v (code %v), want Unavailable \"plugin embeddings.test crashed; restarting\"", err, status.CodeOf(err))
	}
	if err := s.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	after, err := embedOne(ctx, e, "", "hello")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(before, after) || !slices.Equal(after, helperVector("hello", 3)) {
		t.Fatalf("after the restart the config was not reapplied: %v, want %v", after, before)
	}
	if s.Restarts() != 1 || s.Pid() == firstPid || s.Pid() == 0 {
		t.Fatalf("restarts = %d, pid %d → %d", s.Restarts(), firstPid, s.Pid())
	}
	waitGone(t, firstPid, 5*time.Second)
}

// TestCrashStackTraceIsLogged: a plugin that panics has its panic message
// and goroutine stacks in the host's log as one text entry, at error level
// (go-plugin alone logs raw stderr line by line at debug level).
func TestCrashStackTraceIsLogged(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, logs := testManager(t, Options{HealthInterval: time.Hour, RestartBackoff: 50 * time.Millisecond})
	s, err := m.Start(ctx, helperSpec("serve"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := embedOne(ctx, s.Embeddings(), "", "panic"); status.CodeOf(err) != status.Unavailable {
		t.Fatalf("panicking call: %v, want Unavailable", err)
	}
	if err := s.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	i := strings.Index(out, "[ERROR] plugin.embeddings.test: the crashed plugin's last output")
	if i < 0 {
		t.Fatalf("no crash entry in the host log:\n%s", out)
	}
	entry := out[i:]
	if j := strings.Index(entry[1:], "\n20"); j > 0 { // the next entry starts with its timestamp
		entry = entry[:j+1]
	}
	for _, want := range []string{"| panic: helper plugin panicked on purpose", "| goroutine ", "helperPlugin).Embed"} {
		if !strings.Contains(entry, want) {
			t.Errorf("the crash entry lacks %q:\n%s", want, entry)
		}
	}
}

// TestPluginUnavailableIsNotACrash: a live plugin returning Unavailable
// (its provider is down) must reach the caller as is, without a restart.
func TestPluginUnavailableIsNotACrash(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, _ := testManager(t, Options{HealthInterval: time.Hour})
	s, err := m.Start(ctx, helperSpec("serve"))
	if err != nil {
		t.Fatal(err)
	}
	pid := s.Pid()
	_, err = embedOne(ctx, s.Embeddings(), "", "unavailable")
	if status.CodeOf(err) != status.Unavailable || !strings.Contains(err.Error(), "upstream down") || strings.Contains(err.Error(), "crashed; restarting") {
		t.Fatalf("err = %v", err)
	}
	if _, err := embedOne(ctx, s.Embeddings(), "", "fine"); err != nil {
		t.Fatal(err)
	}
	if s.Restarts() != 0 || s.Pid() != pid {
		t.Fatalf("plugin was restarted: restarts %d, pid %d → %d", s.Restarts(), pid, s.Pid())
	}
}

// TestHealthCheckRestartsHungPlugin stops the plugin process (SIGSTOP): it
// neither exits nor answers, so only the health check can notice. It must be
// killed and replaced.
func TestHealthCheckRestartsHungPlugin(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, _ := testManager(t, Options{HealthInterval: 100 * time.Millisecond, HealthTimeout: 500 * time.Millisecond, RestartBackoff: 50 * time.Millisecond})
	s, err := m.Start(ctx, helperSpec("serve"))
	if err != nil {
		t.Fatal(err)
	}
	hung := s.Pid()
	if err := syscall.Kill(hung, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	for s.Restarts() == 0 {
		if ctx.Err() != nil {
			t.Fatal("the hung plugin was never restarted")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := s.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := embedOne(ctx, s.Embeddings(), "", "after"); err != nil {
		t.Fatal(err)
	}
	waitGone(t, hung, 5*time.Second)
}

// TestCloseKillsPluginIgnoringShutdown: the helper returns from Serve on the
// host's shutdown request and then refuses to exit; Close must still end
// it, by SIGKILL after the grace period.
func TestCloseKillsPluginIgnoringShutdown(t *testing.T) {
	t.Parallel()
	m, logs := testManager(t, Options{HealthInterval: time.Hour})
	s, err := m.Start(context.Background(), helperSpec("ignore-shutdown"))
	if err != nil {
		t.Fatal(err)
	}
	pid := s.Pid()
	s.Close()
	waitGone(t, pid, 5*time.Second)
	if !strings.Contains(logs.String(), "plugin failed to exit gracefully") {
		t.Errorf("the plugin was not force-killed; log:\n%s", logs.String())
	}
	_, err = embedOne(context.Background(), s.Embeddings(), "", "x")
	if status.CodeOf(err) != status.Unavailable || !strings.Contains(err.Error(), "shut down") {
		t.Fatalf("call after Close: %v", err)
	}
}

// TestManagerCloseKillsAll: Close ends every supervised plugin.
func TestManagerCloseKillsAll(t *testing.T) {
	t.Parallel()
	m, _ := testManager(t, Options{HealthInterval: time.Hour})
	var pids []int
	for _, name := range []string{"a", "b"} {
		spec := helperSpec("serve")
		spec.Name = name
		s, err := m.Start(context.Background(), spec)
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, s.Pid())
	}
	m.Close()
	for _, pid := range pids {
		waitGone(t, pid, 5*time.Second)
	}
	if _, err := m.Start(context.Background(), helperSpec("serve")); err == nil {
		t.Fatal("Start after Close succeeded")
	}
}

// TestWiringSurvivesTargetRestart wires a consumer to a target embeddings
// plugin through the host, crashes the target, and checks the consumer is
// rewired to the new process.
func TestWiringSurvivesTargetRestart(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, _ := testManager(t, Options{HealthInterval: time.Hour, RestartBackoff: 50 * time.Millisecond})
	tspec := helperSpec("serve")
	tspec.Name, tspec.Config = "target", []byte(`{"scale":5}`)
	target, err := m.Start(ctx, tspec)
	if err != nil {
		t.Fatal(err)
	}
	cspec := helperSpec("serve")
	cspec.Name, cspec.Wires = "consumer", []Wire{{Attribute: "embeddings", Target: target}}
	consumer, err := m.Start(ctx, cspec)
	if err != nil {
		t.Fatal(err)
	}
	want := helperVector("wired", 5)
	got, err := embedOne(ctx, consumer.Embeddings(), "via-wire", "wired")
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("via wire: %v %v, want %v", got, err, want)
	}
	if _, err := embedOne(ctx, target.Embeddings(), "", "crash"); status.CodeOf(err) != status.Unavailable {
		t.Fatalf("crash: %v", err)
	}
	if err := target.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	// Rewiring happens right after the target is back; poll briefly.
	for {
		got, err = embedOne(ctx, consumer.Embeddings(), "via-wire", "wired")
		if err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("via wire after the target restarted: %v %v", got, err)
	}
	if consumer.Restarts() != 0 {
		t.Fatalf("the consumer was restarted; only the target crashed")
	}
}

// TestConfigErrors: a refused config fails Start with the plugin's
// diagnostics; Reconfigure with a refused config keeps the old one.
func TestConfigErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, _ := testManager(t, Options{HealthInterval: time.Hour})
	spec := helperSpec("serve")
	spec.Config = []byte(`{"scale":-1}`)
	_, err := m.Start(ctx, spec)
	var ce *ConfigError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "scale: scale must be positive") {
		t.Fatalf("Start with a bad config: %v", err)
	}
	spec.Config = []byte(`{"scale":2}`)
	s, err := m.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Reconfigure(ctx, []byte(`{"scale":0}`), nil); !errors.As(err, &ce) {
		t.Fatalf("Reconfigure with a bad config: %v", err)
	}
	got, err := embedOne(ctx, s.Embeddings(), "", "abcd")
	if err != nil || !slices.Equal(got, helperVector("abcd", 2)) {
		t.Fatalf("config after a refused Reconfigure: %v %v", got, err)
	}
	if err := s.Reconfigure(ctx, []byte(`{"scale":4}`), nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := embedOne(ctx, s.Embeddings(), "", "abcd"); !slices.Equal(got, helperVector("abcd", 4)) {
		t.Fatalf("Reconfigure not applied: %v", got)
	}
	spec.Kind = plugin.KindTools
	if _, err := m.Start(ctx, spec); err == nil || !strings.Contains(err.Error(), `does not serve kind "tools"`) {
		t.Fatalf("kind mismatch: %v", err)
	}
}

// TestCrashMidStream kills an llm plugin between two chunks of a streamed
// completion: the stream fails with "crashed; restarting" after the chunk
// that did arrive, and the next stream on the same client works.
func TestCrashMidStream(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, _ := testManager(t, Options{HealthInterval: time.Hour, RestartBackoff: 50 * time.Millisecond})
	spec := helperSpec("serve")
	spec.Kind = plugin.KindLLM
	s, err := m.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	p := s.LLM()
	stream := func(text string) (string, error) {
		var got strings.Builder
		err := p.ChatStream(ctx, &llm.ChatRequest{Messages: []llm.Message{{Role: llm.RoleUser, Content: []llm.ContentPart{llm.Text(text)}}}},
			func(c *llm.ChatChunk) error { got.WriteString(c.DeltaText); return nil })
		return got.String(), err
	}
	if got, err := stream("hello"); err != nil || got != "hello" {
		t.Fatalf("stream: %q %v", got, err)
	}
	got, err := stream("crash-mid-stream")
	if got != "c" || status.CodeOf(err) != status.Unavailable || !strings.Contains(err.Error(), "plugin llm.test crashed; restarting") {
		t.Fatalf("crashing stream: got %q, err %v", got, err)
	}
	if err := s.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := stream("again"); err != nil || got != "again" {
		t.Fatalf("stream after the restart: %q %v", got, err)
	}
}

// TestStreamIdleDeadline: a stream whose plugin stops sending mid-way fails
// after the per-call deadline with an error naming the plugin and the call;
// the plugin stays up (it is alive, only slow) and the next stream works.
func TestStreamIdleDeadline(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, _ := testManager(t, Options{HealthInterval: time.Hour})
	spec := helperSpec("serve")
	spec.Kind = plugin.KindLLM
	spec.CallTimeout = 500 * time.Millisecond
	s, err := m.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	stream := func(text string) (string, error) {
		var got strings.Builder
		err := s.LLM().ChatStream(ctx, &llm.ChatRequest{Messages: []llm.Message{{Role: llm.RoleUser, Content: []llm.ContentPart{llm.Text(text)}}}},
			func(c *llm.ChatChunk) error { got.WriteString(c.DeltaText); return nil })
		return got.String(), err
	}
	got, err := stream("stall-mid-stream")
	if got != "s" || status.CodeOf(err) != status.DeadlineExceeded || !strings.Contains(err.Error(), "plugin llm.test sent nothing on /nemoclave.llm.v1.LLM/ChatStream for 500ms") {
		t.Fatalf("stalled stream: got %q, err %v (code %v)", got, err, status.CodeOf(err))
	}
	if got, err := stream("a longer answer than the deadline needs"); err != nil || got != "a longer answer than the deadline needs" {
		t.Fatalf("stream after the stall: %q %v", got, err)
	}
	if s.Restarts() != 0 {
		t.Errorf("a slow plugin was restarted %d times", s.Restarts())
	}
}

// TestCallDeadline: a plugin that stops answering (SIGSTOP, and no health
// check soon enough to notice) fails the call at its per-call deadline with
// an error naming the plugin and the call, instead of blocking the caller.
func TestCallDeadline(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, _ := testManager(t, Options{HealthInterval: time.Hour})
	spec := helperSpec("serve")
	spec.CallTimeout = 500 * time.Millisecond
	s, err := m.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := embedOne(ctx, s.Embeddings(), "", "before"); err != nil {
		t.Fatal(err)
	}
	pid := s.Pid()
	if pid <= 0 {
		t.Fatalf("pid %d", pid)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(pid, syscall.SIGKILL) //nolint:errcheck // cleanup of a stopped helper
	// The stop takes effect asynchronously, thread by thread: on a loaded
	// machine a thread could still answer the call.
	waitStopped(t, pid)
	_, err = embedOne(ctx, s.Embeddings(), "", "hangs")
	if status.CodeOf(err) != status.DeadlineExceeded {
		t.Fatalf("call to a hung plugin: %v, want DeadlineExceeded", err)
	}
	for _, w := range []string{"plugin embeddings.test", "Embed", "within 500ms", "timeout ="} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("deadline error lacks %q: %v", w, err)
		}
	}
	if ctx.Err() != nil {
		t.Fatal("the caller's own context ran out: the call was not bounded")
	}
}

// waitStopped waits (up to a minute) until every thread of pid is stopped
// (state T in /proc/<pid>/task/*/stat).
func waitStopped(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
		stopped := len(tasks) > 0
		for _, f := range tasks {
			b, err := os.ReadFile(f)
			i := bytes.LastIndexByte(b, ')')
			if err != nil || i < 0 || i+2 >= len(b) || (b[i+2] != 'T' && b[i+2] != 't') {
				stopped = false
				break
			}
		}
		if stopped {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d did not stop within a minute of SIGSTOP", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
