package kubernetes

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nemoclave/nemoclave/sandbox/confine"
	"github.com/nemoclave/nemoclave/sandbox/local"
	"golang.org/x/sys/unix"
)

// SupervisorCommand is the hidden nemoclave subcommand the sandbox pod
// runs: "nemoclave sandbox-supervisor run" as the container's command, and
// "nemoclave sandbox-supervisor exec -- CMD..." for Exec and Attach.
const SupervisorCommand = "sandbox-supervisor"

// RunSupervisor is the in-pod supervisor's main. It returns the exit code
// for the process: the agent's, or 125 when the sandbox could not start.
func RunSupervisor(args []string) int {
	return runSupervisor(filepath.Join(configDir, configFile), args)
}

func runSupervisor(configPath string, args []string) int {
	cfg, err := readSupervisorConfig(configPath)
	if err == nil {
		switch {
		case len(args) == 1 && args[0] == "run":
			var code int
			code, err = superviseAgent(cfg)
			if err == nil {
				return code
			}
		case len(args) >= 1 && args[0] == "exec":
			var code int
			code, err = execConfined(cfg, args[1:])
			if err == nil {
				return code
			}
		default:
			err = errors.New("usage: nemoclave sandbox-supervisor run | exec [--env K=V]... -- CMD [ARG...] (runs only inside a Kubernetes sandbox pod)")
		}
	}
	fmt.Fprintln(os.Stderr, "nemoclave sandbox supervisor:", err)
	return 125
}

func readSupervisorConfig(path string) (*supervisorConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s (is this a nemoclave sandbox pod?): %w", path, err)
	}
	var cfg supervisorConfig
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	if cfg.Policy == nil || len(cfg.Command) == 0 {
		return nil, fmt.Errorf("%s has no policy or no command; recreate the sandbox", path)
	}
	return &cfg, checkIdentityHidden(cfg.Policy)
}

// agentEnv builds the agent's environment from scratch, as the local
// driver does.
func agentEnv(cfg *supervisorConfig) []string {
	env := []string{"PATH=" + local.SandboxPath, "HOME=/tmp", "TMPDIR=/tmp", "LANG=C.UTF-8", "TERM=xterm-256color", "NEMOCLAVE_SANDBOX=" + cfg.Name}
	env = append(env, local.ListenerEnv(cfg.Listeners)...)
	keys := sortedKeys(cfg.Env)
	for _, k := range keys {
		env = append(env, k+"="+cfg.Env[k])
	}
	return env
}

func ports(cfg *supervisorConfig) []int {
	var out []int
	for _, p := range cfg.Listeners {
		out = append(out, p)
	}
	sort.Ints(out)
	return out
}

// superviseAgent serves the listeners, forks the confined agent, forwards
// SIGTERM to it, reaps every orphan (it is PID 1) and returns the agent's
// exit code.
func superviseAgent(cfg *supervisorConfig) (int, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for name, port := range cfg.Listeners {
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			return 0, fmt.Errorf("listen for %s on 127.0.0.1:%d: %w", name, port, err)
		}
		go forward(ctx, ln, name, cfg)
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	pid, err := spawnConfined(cfg, cfg.Command, agentEnv(cfg), []uintptr{0, 1, 2})
	if err != nil {
		return 0, err
	}
	go func() {
		for s := range sigs {
			_ = unix.Kill(-pid, s.(syscall.Signal))
		}
	}()
	for {
		var ws unix.WaitStatus
		got, err := unix.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("wait for the agent: %w", err)
		}
		if got == pid {
			return exitCode(ws), nil
		}
	}
}

// execConfined runs one extra command under the agent's confinement (Exec
// and Attach arrive through pods/exec as a process of their own).
func execConfined(cfg *supervisorConfig, args []string) (int, error) {
	env := agentEnv(cfg) // never the exec's own environment
	for len(args) >= 2 && args[0] == "--env" {
		k, _, _ := strings.Cut(args[1], "=")
		if err := confine.CheckEnvName(k); err != nil {
			return 0, err
		}
		env = append(env, args[1])
		args = args[2:]
	}
	if len(args) < 2 || args[0] != "--" {
		return 0, errors.New("usage: nemoclave sandbox-supervisor exec [--env K=V]... -- CMD [ARG...]")
	}
	argv := args[1:]
	pid, err := spawnConfined(cfg, argv, env, []uintptr{0, 1, 2})
	if err != nil {
		return 0, err
	}
	for {
		var ws unix.WaitStatus
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, err
		}
		return exitCode(ws), nil
	}
}

func exitCode(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// spawnConfined forks argv from an OS thread that local.Confine has
// restricted; the thread is never unlocked, so it dies with its goroutine
// and no other Go code ever runs on it.
func spawnConfined(cfg *supervisorConfig, argv, env []string, files []uintptr) (int, error) {
	path, err := lookPath(argv[0])
	if err != nil {
		return 0, err
	}
	type result struct {
		pid int
		err error
	}
	ch := make(chan result, 1)
	var try func()
	try = func() {
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			go try()
			select {} // park the leader: it must never be confined
		}
		warn, err := local.Confine(cfg.Policy, ports(cfg))
		if err != nil {
			ch <- result{err: fmt.Errorf("confine the sandbox: %w", err)}
			return
		}
		if warn != "" {
			fmt.Fprintln(os.Stderr, warn)
		}
		pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{
			Dir: cfg.Workspace, Env: env, Files: files, Sys: &syscall.SysProcAttr{Setsid: true},
		})
		if err != nil {
			err = fmt.Errorf("start %s in the sandbox: %w", argv[0], err)
		}
		ch <- result{pid: pid, err: err}
	}
	go try()
	r := <-ch
	return r.pid, r.err
}

func lookPath(name string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	for _, dir := range filepath.SplitList(local.SandboxPath) {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found on the sandbox PATH (%s); use an image that contains it", name, local.SandboxPath)
}

// forward proxies each local connection to the gateway Front, preceded by
// the preamble with the pod's current projected token (the kubelet
// rotates the file, so it is read for every connection).
func forward(ctx context.Context, ln net.Listener, listener string, cfg *supervisorConfig) {
	go func() { <-ctx.Done(); ln.Close() }()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			token, err := os.ReadFile(cfg.TokenFile)
			if err != nil {
				fmt.Fprintln(os.Stderr, "nemoclave sandbox supervisor: read the gateway token:", err)
				return
			}
			dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			g, err := dialGateway(dctx, cfg)
			cancel()
			if err != nil {
				fmt.Fprintln(os.Stderr, "nemoclave sandbox supervisor: reach the gateway:", err)
				return
			}
			defer g.Close()
			if _, err := fmt.Fprintf(g, "%s %s %s\n", preambleMagic, listener, strings.TrimSpace(string(token))); err != nil {
				return
			}
			pipe(c, g)
		}()
	}
}

// pipe copies both ways, half-closing each side when the other ends.
func pipe(a, b net.Conn) {
	var wg sync.WaitGroup
	wg.Add(2)
	cp := func(dst, src net.Conn) {
		defer wg.Done()
		_, _ = io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		} else {
			dst.Close()
		}
	}
	go cp(a, b)
	go cp(b, a)
	wg.Wait()
}

// dialGateway connects to the Front, over TLS verified against the
// configured CA when there is one.
func dialGateway(ctx context.Context, cfg *supervisorConfig) (net.Conn, error) {
	if cfg.GatewayCA == "" {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", cfg.Gateway)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(cfg.GatewayCA)) {
		return nil, errors.New("the gateway CA in the sandbox config holds no certificate; recreate the sandbox")
	}
	d := tls.Dialer{Config: &tls.Config{RootCAs: pool, ServerName: cfg.GatewayServerName, MinVersion: tls.VersionTLS13}}
	return d.DialContext(ctx, "tcp", cfg.Gateway)
}
