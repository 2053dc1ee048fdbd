package daemon

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

type attachRecorder struct {
	mu       sync.Mutex
	out      strings.Builder
	detached chan struct{}
	exited   chan int
}

func (a *attachRecorder) Ready(bool) {}
func (a *attachRecorder) Output(b []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.out.Write(b)
}
func (a *attachRecorder) Detached()               { close(a.detached) }
func (a *attachRecorder) Exit(code int, _ string) { a.exited <- code }
func (a *attachRecorder) waitFor(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		a.mu.Lock()
		got := a.out.String()
		a.mu.Unlock()
		if strings.Contains(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("attach output never showed %q; it is %q", want, got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestAttachOverTheSocket: input, resizes, the end of input and the exit
// cross the Attach stream in order, and a detach is acknowledged.
func TestAttachOverTheSocket(t *testing.T) {
	t.Parallel()
	b := &fakeBackend{}
	_, c, _ := serve(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	rec := &attachRecorder{detached: make(chan struct{}), exited: make(chan int, 1)}
	s, done, err := c.Attach(ctx, AttachRequest{Sandbox: "box", Rows: 30, Cols: 100, Output: true, Tail: 20}, rec)
	if err != nil {
		t.Fatal(err)
	}
	if !s.TTY {
		t.Error("the session should report the agent's terminal")
	}
	if _, err := s.Write([]byte("hello ")); err != nil {
		t.Fatal(err)
	}
	if err := s.Resize(40, 120); err != nil {
		t.Fatal(err)
	}
	if err := s.CloseStdin(); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "HELLO resize 40x120\neof\n")
	if _, err := s.Write([]byte("exit")); err != nil {
		t.Fatal(err)
	}
	if code := <-rec.exited; code != 7 {
		t.Errorf("exit code %d, want 7", code)
	}
	if err := <-done; err != nil {
		t.Errorf("the session ended with %v", err)
	}
	s.Close()
	b.saw(t, "Attach box 30x100 output=true tail=20")

	rec2 := &attachRecorder{detached: make(chan struct{}), exited: make(chan int, 1)}
	s2, done2, err := c.Attach(ctx, AttachRequest{Sandbox: "box"}, rec2)
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Detach(); err != nil {
		t.Fatal(err)
	}
	<-rec2.detached
	<-done2
	s2.Close()
	b.saw(t, "Attach detach")

	if _, _, err := c.Attach(ctx, AttachRequest{Sandbox: "missing"}, rec2); err == nil || !strings.Contains(err.Error(), "sandbox not found: missing") {
		t.Errorf("attach to a missing sandbox: %v", err)
	}
}
