package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/nemoclave/nemoclave/policy"
	"github.com/nemoclave/nemoclave/sandbox"
	"github.com/nemoclave/nemoclave/sandbox/local"
	"github.com/nemoclave/nemoclave/sdk/status"
)

// sandboxLocal runs the server in a sandbox of its own, made by the local
// sandbox driver: namespaces, a read-only system view, Landlock, seccomp,
// no capabilities, cgroup limits. Its filesystem policy comes from this
// plugin's config; its only way out is an egress listener inside its
// network namespace that this plugin forwards to its own egress proxy, so
// the server reaches what the plugin's policy allows and nothing else.
const sandboxLocal = "local"

// systemReadOnly is the base view every local sandbox gets.
var systemReadOnly = []string{"/usr", "/bin", "/sbin", "/lib", "/lib64", "/etc"}

// localSandboxes is the driver shared by every connection of the plugin;
// its state lives in the plugin's state directory.
type localSandboxes struct {
	once sync.Once
	drv  *local.Driver
	err  error
}

func (l *localSandboxes) driver(stateDir string) (*local.Driver, error) {
	l.once.Do(func() {
		if stateDir == "" {
			l.err = errors.New(`sandbox = "local" needs the plugin's state directory, and the host gave none`)
			return
		}
		l.drv, l.err = local.New(local.Config{StateRoot: filepath.Join(stateDir, "sandboxes")})
	})
	return l.drv, l.err
}

// localTransport starts a fresh sandbox, runs the server in it with its
// stdio piped to an MCP transport, and returns a cleanup that deletes the
// sandbox (killing everything in it).
func (u *upstream) localTransport(ctx context.Context) (mcp.Transport, func(), error) {
	drv, err := u.sandboxes.driver(u.stateDir)
	if err != nil {
		return nil, nil, status.Errorf(status.Unavailable, "local sandbox: %v", err)
	}
	suffix := make([]byte, 6)
	rand.Read(suffix)
	name := "mcp-" + hex.EncodeToString(suffix)

	ws := u.cfg.Workspace
	if ws == "" {
		ws = filepath.Join(u.stateDir, "workspaces", name)
		if err := os.MkdirAll(ws, 0o755); err != nil {
			return nil, nil, status.Errorf(status.Unavailable, "local sandbox: create its workspace: %v", err)
		}
	}
	rw := []string{"/tmp"}
	if u.cfg.Workspace == "" || u.cfg.WorkspaceWritable {
		rw = append(rw, "/workspace")
	}
	spec := sandbox.Spec{
		Name: name,
		// The sandbox's own process only keeps it alive; the server is an
		// exec'd process so its stdio can be piped.
		Command:   []string{"sleep", "infinity"},
		Workspace: ws,
		Policy: &policy.Policy{
			Name: "tools-mcp", Revision: 1, UnknownHosts: policy.UnknownDeny,
			Filesystem: policy.Filesystem{ReadOnly: append(append([]string(nil), systemReadOnly...), u.cfg.ReadOnly...), ReadWrite: rw},
		},
		Resources: sandbox.Resources{MemoryBytes: int64(u.cfg.MemoryMB) << 20, Pids: 256, AllowUnlimited: u.cfg.AllowUnlimited},
	}
	proxy := proxyAddress()
	if proxy != "" {
		spec.Listeners = []sandbox.ListenerSpec{{Name: sandbox.ListenerEgress}}
	}
	explain := func(step string, err error) error {
		hint := ""
		if checkInheritedSandbox() == nil {
			hint = ` (this plugin is itself sandboxed and cannot create sandboxes: use sandbox = "inherit")`
		}
		return status.Errorf(status.Unavailable, "local sandbox for the MCP server: %s: %v%s", step, err, hint)
	}
	if _, err := drv.Create(ctx, spec); err != nil {
		return nil, nil, explain("create", err)
	}
	deleteBox := func() {
		dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = drv.Delete(dctx, name)
		if u.cfg.Workspace == "" {
			os.RemoveAll(ws)
		}
	}
	started, err := drv.Start(ctx, name)
	if err != nil {
		deleteBox()
		return nil, nil, explain("start", err)
	}
	var lns []net.Listener
	for _, l := range started.Listeners {
		lns = append(lns, l)
		go forward(l, proxy)
	}
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	proc, err := drv.Exec(ctx, name, sandbox.ExecRequest{Command: u.cfg.argv(), Env: u.cfg.Env, Stdin: inR, Stdout: outW, Stderr: os.Stderr})
	if err != nil {
		for _, l := range lns {
			l.Close()
		}
		deleteBox()
		return nil, nil, explain("run the server", err)
	}
	go func() {
		// The server's exit ends the session: its stdout reaches EOF.
		code, err := proc.Wait(context.Background())
		outW.CloseWithError(fmt.Errorf("the MCP server exited (code %d, %v)", code, err))
	}()
	cleanup := func() {
		inW.Close()
		for _, l := range lns {
			l.Close()
		}
		deleteBox()
	}
	return &mcp.IOTransport{Reader: outR, Writer: inW}, cleanup, nil
}

// proxyAddress is host:port of the plugin's own egress proxy, or "" when
// the plugin has none (then the sandbox gets no network at all).
func proxyAddress() string {
	for _, k := range []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"} {
		if v := os.Getenv(k); v != "" {
			if u, err := url.Parse(v); err == nil && u.Host != "" {
				return u.Host
			}
		}
	}
	return ""
}

// forward relays every connection to the sandbox's egress listener to the
// plugin's proxy, byte for byte: the proxy sees CONNECT and absolute-form
// requests exactly as the server sent them and judges them by the
// plugin's policy.
func forward(l net.Listener, proxy string) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			up, err := net.DialTimeout("tcp", proxy, 10*time.Second)
			if err != nil {
				return
			}
			defer up.Close()
			go func() { io.Copy(up, c); up.(*net.TCPConn).CloseWrite() }()
			io.Copy(c, up)
		}()
	}
}
