package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"golang.org/x/net/http/httpproxy"

	"github.com/nemoclave/nemoclave/sdk/status"
)

// connectTimeout bounds starting a server and the MCP initialize exchange;
// npx-style launchers can take a while on a cold cache.
const connectTimeout = 60 * time.Second

// conn is one live MCP session; done closes when it ends (the server
// exited, the connection dropped, or it was closed).
type conn struct {
	cs   *mcp.ClientSession
	done chan struct{}
}

func (c *conn) alive() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// upstream owns the MCP session for one config: it connects lazily,
// reconnects after the server dies, and announces changes to watchers.
type upstream struct {
	cfg     config
	changes *broadcast
	// stateDir and sandboxes serve sandbox = "local".
	stateDir  string
	sandboxes *localSandboxes

	mu     sync.Mutex
	cur    *conn
	closed bool
}

// newUpstream returns an unconnected upstream; changes is the plugin's,
// shared across reconfigurations so watchers survive them.
func newUpstream(cfg config, changes *broadcast, stateDir string, sandboxes *localSandboxes) *upstream {
	return &upstream{cfg: cfg, changes: changes, stateDir: stateDir, sandboxes: sandboxes}
}

// session returns the live session, connecting first if there is none.
func (u *upstream) session(ctx context.Context) (*mcp.ClientSession, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return nil, status.Errorf(status.Unavailable, "the MCP server connection was closed by a reconfiguration; retry")
	}
	if u.cur != nil && u.cur.alive() {
		return u.cur.cs, nil
	}
	cctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	c, err := u.connect(cctx)
	if err != nil {
		return nil, err
	}
	reconnected := u.cur != nil
	u.cur = c
	if reconnected {
		// The new server may offer different tools than the one that died.
		u.changes.notify()
	}
	return c.cs, nil
}

func (u *upstream) connect(ctx context.Context) (*conn, error) {
	client := mcp.NewClient(&mcp.Implementation{Name: "nemoclave-tools-mcp", Version: version}, &mcp.ClientOptions{
		ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) { u.changes.notify() },
	})
	var (
		t       mcp.Transport
		what    string
		cleanup = func() {}
		err     error
	)
	if len(u.cfg.Command) > 0 && u.cfg.Sandbox == sandboxLocal {
		what = fmt.Sprintf("%q in a local sandbox", u.cfg.Command[0])
		t, cleanup, err = u.localTransport(ctx)
	} else {
		t, what, err = u.transport()
	}
	if err != nil {
		return nil, err
	}
	cs, err := client.Connect(ctx, t, nil)
	if err != nil {
		cleanup()
		return nil, status.Errorf(status.Unavailable, "connect to the MCP server %s: %v", what, err)
	}
	c := &conn{cs: cs, done: make(chan struct{})}
	go func() {
		cs.Wait()
		cleanup()
		close(c.done)
		u.changes.notify()
	}()
	return c, nil
}

// transport builds the MCP transport for the config, and a description of
// the server for error messages.
func (u *upstream) transport() (mcp.Transport, string, error) {
	if u.cfg.URL != "" {
		proxy := httpproxy.FromEnvironment().ProxyFunc()
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.Proxy = func(r *http.Request) (*url.URL, error) { return proxy(r.URL) }
		var rt http.RoundTripper = tr
		headers := map[string]string{}
		for k, v := range u.cfg.Headers {
			headers[k] = v
		}
		if u.cfg.BearerToken != "" {
			headers["Authorization"] = "Bearer " + u.cfg.BearerToken
		}
		if len(headers) > 0 {
			rt = headerTransport{base: tr, headers: headers}
		}
		return &mcp.StreamableClientTransport{Endpoint: u.cfg.URL, HTTPClient: &http.Client{Transport: rt}}, u.cfg.URL, nil
	}
	if u.cfg.Sandbox == sandboxInherit {
		if err := checkInheritedSandbox(); err != nil {
			return nil, "", status.Errorf(status.PermissionDenied, "%v", err)
		}
	} else if u.cfg.Sandbox != sandboxNone {
		// Validation rejects this; refuse here too so no path runs a
		// server whose confinement was never decided.
		return nil, "", status.Errorf(status.InvalidArgument, `sandbox must be "inherit" or "none" to run a stdio MCP server`)
	}
	argv := u.cfg.argv()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = os.Environ()
	keys := make([]string, 0, len(u.cfg.Env))
	for k := range u.cfg.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		cmd.Env = append(cmd.Env, k+"="+u.cfg.Env[k])
	}
	cmd.Dir = u.cfg.Dir
	// The server's stderr is its log; it joins the plugin's, which the host
	// collects. Pdeathsig makes sure the server dies with the plugin.
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return &mcp.CommandTransport{Command: cmd, TerminateDuration: 2 * time.Second}, fmt.Sprintf("%q", argv[0]), nil
}

// close ends the session (stopping a stdio server) and refuses new ones.
func (u *upstream) close() {
	u.mu.Lock()
	c := u.cur
	u.closed, u.cur = true, nil
	u.mu.Unlock()
	if c != nil {
		c.cs.Close()
		// Wait for the cleanup (a local sandbox deleted), so nothing the
		// old config started outlives a reconfiguration.
		select {
		case <-c.done:
		case <-time.After(15 * time.Second):
		}
	}
	u.changes.notify()
}

// headerTransport adds configured headers to every request.
type headerTransport struct {
	base    http.RoundTripper
	headers map[string]string
}

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range h.headers {
		r.Header.Set(k, v)
	}
	return h.base.RoundTrip(r)
}

// broadcast wakes every waiter once per notify.
type broadcast struct {
	mu sync.Mutex
	ch chan struct{}
}

func newBroadcast() *broadcast { return &broadcast{ch: make(chan struct{})} }

// wait returns a channel closed at the next notify.
func (b *broadcast) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ch
}

func (b *broadcast) notify() {
	b.mu.Lock()
	close(b.ch)
	b.ch = make(chan struct{})
	b.mu.Unlock()
}
