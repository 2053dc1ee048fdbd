package listener

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func start(t *testing.T, l Limits) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "body: "+err.Error(), http.StatusRequestTimeout)
			return
		}
		_, _ = io.WriteString(w, "got "+string(b))
	})
	s := New(ln, h, "inference", l)
	go func() { _ = s.Serve() }()
	t.Cleanup(func() { s.Close() })
	return s, ln.Addr().String()
}

// waitClosed reads from c until the server closes it, or fails after a
// generous bound (the server's own deadlines are far shorter).
func waitClosed(t *testing.T, c net.Conn, what string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err := io.Copy(io.Discard, c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("%s: the server kept the connection open", what)
	}
}

// TestAbuse_R2_ListenerCapsAndDeadlines: idle connections, a trickled
// header, a trickled body and a flood of connections from one sandbox;
// the listener keeps at most MaxConns open, closes the idle and trickling
// ones, and serves again once the flood is gone.
func TestAbuse_R2_ListenerCapsAndDeadlines(t *testing.T) {
	_, addr := start(t, Limits{MaxConns: 8, HeaderTimeout: 300 * time.Millisecond, BodyTimeout: 300 * time.Millisecond, IdleTimeout: 300 * time.Millisecond})

	// Trickled headers: closed after HeaderTimeout.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(c, "POST /x HTTP/1.1\r\nHost: x\r\n")
	waitClosed(t, c, "trickled headers")
	c.Close()

	// Trickled body: the handler's read fails, the connection closes.
	c, _ = net.Dial("tcp", addr)
	_, _ = io.WriteString(c, "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
	waitClosed(t, c, "trickled body")
	c.Close()

	// Idle keep-alive after a served request: closed after IdleTimeout.
	c, _ = net.Dial("tcp", addr)
	_, _ = io.WriteString(c, "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "got hi" {
		t.Fatalf("served %q", b)
	}
	waitClosed(t, c, "idle keep-alive")
	c.Close()

	// Flood: 400 connections; the server never holds more than 8 and
	// refuses the rest with a 503 that says why.
	var flood []net.Conn
	defer func() {
		for _, c := range flood {
			c.Close()
		}
	}()
	s2, addr2 := start(t, Limits{MaxConns: 8})
	for i := 0; i < 400; i++ {
		c, err := net.Dial("tcp", addr2)
		if err != nil {
			t.Fatal(err)
		}
		flood = append(flood, c)
		if n := s2.Open(); n > 8 {
			t.Fatalf("%d connections open, cap 8", n)
		}
	}
	// The last connection is over the cap: it gets the 503.
	last := flood[len(flood)-1]
	_ = last.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err = http.ReadResponse(bufio.NewReader(last), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "close idle connections") {
		t.Fatalf("over the cap: %d %s", resp.StatusCode, b)
	}
	if s2.Open() > 8 || s2.Refused() < 392 {
		t.Fatalf("open %d refused %d", s2.Open(), s2.Refused())
	}
	for _, c := range flood {
		c.Close()
	}
	flood = nil
	// Once the flood is gone the sandbox is served again.
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Post("http://"+addr2+"/x", "text/plain", strings.NewReader("again"))
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && string(b) == "got again" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not served after the flood: %v (open %d)", err, s2.Open())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBodyDeadlineDoesNotCutStreams: a response that outlives the body
// deadline is delivered whole.
func TestBodyDeadlineDoesNotCutStreams(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		for i := 0; i < 5; i++ {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			_, _ = io.WriteString(w, "x")
			http.NewResponseController(w).Flush()
		}
	})
	s := New(ln, h, "inference", Limits{BodyTimeout: 50 * time.Millisecond})
	go func() { _ = s.Serve() }()
	defer s.Close()
	resp, err := http.Post("http://"+ln.Addr().String()+"/", "text/plain", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "xxxxx" {
		t.Fatalf("stream cut: %q", b)
	}
}
