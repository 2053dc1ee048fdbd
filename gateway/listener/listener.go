package listener

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Limits bound one sandbox's use of one listener. Zero fields take the
// defaults below.
type Limits struct {
	// MaxConns is the most open connections; the next one is answered
	// 503 and closed at once, so it costs a descriptor only for that
	// moment.
	MaxConns int
	// HeaderTimeout bounds reading a request's headers, from the first
	// byte of a new connection or of a keep-alive request.
	HeaderTimeout time.Duration
	// BodyTimeout bounds reading a request's body. It does not bound the
	// response: streamed answers may run as long as the model needs.
	BodyTimeout time.Duration
	// IdleTimeout closes a keep-alive connection with no request.
	IdleTimeout time.Duration
}

// Defaults for zero Limits fields.
const (
	DefaultMaxConns      = 256
	DefaultHeaderTimeout = 10 * time.Second
	DefaultBodyTimeout   = 60 * time.Second
	DefaultIdleTimeout   = 90 * time.Second
)

func (l Limits) withDefaults() Limits {
	if l.MaxConns <= 0 {
		l.MaxConns = DefaultMaxConns
	}
	if l.HeaderTimeout <= 0 {
		l.HeaderTimeout = DefaultHeaderTimeout
	}
	if l.BodyTimeout <= 0 {
		l.BodyTimeout = DefaultBodyTimeout
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = DefaultIdleTimeout
	}
	return l
}

// Server is an http.Server bound to one capped listener.
type Server struct {
	*http.Server
	ln *capped
}

// New wraps ln with the connection cap and h with the body deadline, and
// returns the server; call Serve to run it and Close to stop it. name
// appears in refusals ("inference", "agent API").
func New(ln net.Listener, h http.Handler, name string, l Limits) *Server {
	l = l.withDefaults()
	c := &capped{Listener: ln, max: int64(l.MaxConns), name: name}
	srv := &http.Server{
		Handler:           bodyDeadline(h, l.BodyTimeout),
		ReadHeaderTimeout: l.HeaderTimeout,
		IdleTimeout:       l.IdleTimeout,
		// No ReadTimeout or WriteTimeout: both would also cut a long
		// streamed answer. The body deadline is set per request instead.
	}
	return &Server{Server: srv, ln: c}
}

// Serve serves until Close; it returns nil after Close.
func (s *Server) Serve() error {
	err := s.Server.Serve(s.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Open reports the connections open now.
func (s *Server) Open() int64 { return s.ln.open.Load() }

// Refused reports the connections refused by the cap so far.
func (s *Server) Refused() int64 { return s.ln.refused.Load() }

// capped is a listener that admits at most max open connections.
type capped struct {
	net.Listener
	max     int64
	name    string
	open    atomic.Int64
	refused atomic.Int64
}

func (c *capped) Accept() (net.Conn, error) {
	for {
		conn, err := c.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if !c.admit() {
			c.refused.Add(1)
			go refuse(conn, fmt.Sprintf("the sandbox already has %d open connections to the gateway's %s listener; close idle connections and retry", c.max, c.name))
			continue
		}
		return &counted{Conn: conn, open: &c.open}, nil
	}
}

// admit counts one more open connection unless max are open. The count
// never exceeds max, not even for an instant, so Open is exact.
func (c *capped) admit() bool {
	for {
		n := c.open.Load()
		if n >= c.max {
			return false
		}
		if c.open.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// refuse answers 503 without reading the request, so the client sees why.
func refuse(conn net.Conn, msg string) {
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	body := `{"error":{"message":` + quote(msg) + `,"type":"overloaded","code":"too_many_connections"}}`
	_, _ = io.WriteString(conn, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: "+
		fmt.Sprint(len(body))+"\r\n\r\n"+body)
	_ = conn.Close()
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

type counted struct {
	net.Conn
	open *atomic.Int64
	once sync.Once
}

func (c *counted) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.open.Add(-1) })
	return err
}

// bodyDeadline gives a request d to deliver its body, then clears the
// deadline so the response (a stream, say) is not cut.
func bodyDeadline(h http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			h.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		if err := rc.SetReadDeadline(time.Now().Add(d)); err != nil {
			h.ServeHTTP(w, r)
			return
		}
		r.Body = &deadlineBody{ReadCloser: r.Body, clear: func() { _ = rc.SetReadDeadline(time.Time{}) }}
		h.ServeHTTP(w, r)
	})
}

// deadlineBody clears the read deadline once the body has been read to
// its end; a body still unread when the deadline passes fails with a
// timeout, which the handler reports and the server answers by closing.
type deadlineBody struct {
	io.ReadCloser
	clear func()
	done  bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) && !b.done {
		b.done = true
		b.clear()
	}
	return n, err
}
