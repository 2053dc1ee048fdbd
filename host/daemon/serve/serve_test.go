package serve

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/host/daemon"
)

// Run serves a home: a client reaches it over the socket, the metrics
// endpoint answers, a second daemon for the same home is refused, and
// Shutdown ends Run with the pid file removed.
func TestRunServesAHome(t *testing.T) {
	home := t.TempDir()
	log := &lockedWriter{w: &bytes.Buffer{}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	metrics := freeAddr(t)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Home: home, MetricsListen: metrics, Stderr: log})
	}()
	c := connectWhenUp(ctx, t, home, done)
	defer c.Close()
	p, err := c.Ping(ctx)
	if err != nil || p.Home != home || int(p.Pid) != os.Getpid() {
		t.Fatalf("ping: %+v %v", p, err)
	}
	if b, err := os.ReadFile(filepath.Join(home, "run", "daemon.pid")); err != nil || strings.TrimSpace(string(b)) == "" {
		t.Errorf("pid file: %q %v", b, err)
	}
	resp, err := http.Get("http://" + metrics + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "# TYPE") {
		t.Errorf("metrics: %s\n%s", resp.Status, body)
	}

	// One daemon per home.
	if err := Run(ctx, Config{Home: home}); !errors.Is(err, daemon.ErrLocked) {
		t.Errorf("second daemon for the same home: %v, want it refused", err)
	}

	if err := c.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after Shutdown: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Run did not return after Shutdown")
	}
	if _, err := os.Stat(filepath.Join(home, "run", "daemon.pid")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file left behind: %v", err)
	}
	if !strings.Contains(log.String(), `"daemon serving"`) {
		t.Errorf("the log does not say the daemon serves:\n%s", log.String())
	}
}

// A metrics address that cannot be listened on fails Run with the flag's
// name, and releases the home for the next daemon.
func TestRunBadMetricsAddress(t *testing.T) {
	home := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := Run(ctx, Config{Home: home, MetricsListen: "256.0.0.1:1", Stderr: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "--metrics-listen") {
		t.Fatalf("Run: %v, want a --metrics-listen error", err)
	}
	if held, _ := daemon.LockHeld(home); held {
		t.Error("the failed daemon still holds the home's lock")
	}
}

func connectWhenUp(ctx context.Context, t *testing.T, home string, done <-chan error) *daemon.Client {
	t.Helper()
	for {
		c, err := daemon.Connect(ctx, home, false)
		if err == nil {
			return c
		}
		select {
		case err := <-done:
			t.Fatalf("Run returned before serving: %v", err)
		case <-ctx.Done():
			t.Fatalf("the daemon did not come up: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// freeAddr is a loopback address no one listens on: listened on once, then
// closed.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// lockedWriter lets the daemon's log be read while it writes.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.(*bytes.Buffer).String()
}
