package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
)

// The operator's journey through a real terminal: the binaries copied under
// /tmp, the quickstart with an interactive chat agent, driven as a person
// would through pseudo terminals (creack/pty) — run -d, connect and chat
// (answered from the replay cassette), detach and re-attach, a shell in the
// sandbox (window size, Ctrl-C), `term` approving an egress request to an
// unknown host, an attached run that is detached from — as root and as an
// ordinary user created with useradd.

// actor runs nemoclave as one user.
type actor struct {
	t    *testing.T
	bin  string
	home string
	dir  string // working directory
	env  []string
	cred *syscall.Credential // nil: the test's own user
}

func (a *actor) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(a.bin, "nemoclave"), args...)
	cmd.Env = a.env
	cmd.Dir = a.dir
	if a.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: a.cred}
	}
	return cmd
}

func (a *actor) run(args ...string) result {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := a.command(ctx, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
		errb.WriteString(err.Error())
	}
	return result{out.String(), errb.String(), code}
}

func (a *actor) must(args ...string) string {
	a.t.Helper()
	r := a.run(args...)
	if r.code != 0 {
		a.t.Fatalf("nemoclave %s: exit %d\nstdout:\n%s\nstderr:\n%s\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr, a.logs())
	}
	return r.stdout
}

func (a *actor) logs() string {
	b, _ := os.ReadFile(filepath.Join(a.home, "logs", "daemon.log"))
	s, _ := os.ReadFile(filepath.Join(a.home, "sandboxes", "quickstart", "agent.log"))
	return "daemon log:\n" + tail(string(b), 40) + "\nagent log:\n" + tail(string(s), 40)
}

func (a *actor) state(name string) string {
	var list []struct{ Name, State string }
	if err := json.Unmarshal([]byte(a.must("sandbox", "list", "-o", "json")), &list); err != nil {
		a.t.Fatal(err)
	}
	for _, s := range list {
		if s.Name == name {
			return s.State
		}
	}
	return ""
}

func (a *actor) waitState(name, want string) {
	a.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		got := a.state(name)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("sandbox %s is %q, want %q\n%s", name, got, want, a.logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// term is a nemoclave process on a pseudo terminal.
type term struct {
	t    *testing.T
	name string
	f    *os.File
	cmd  *exec.Cmd
	done chan struct{}
	code int

	mu   sync.Mutex
	out  bytes.Buffer
	mark int // expect looks after this offset
}

// onPTY starts nemoclave on a new 30x100 terminal.
func (a *actor) onPTY(args ...string) *term {
	a.t.Helper()
	cmd := a.command(context.Background(), args...)
	attrs := &syscall.SysProcAttr{Setsid: true, Setctty: true, Credential: a.cred}
	cmd.SysProcAttr = nil
	f, err := pty.StartWithAttrs(cmd, &pty.Winsize{Rows: 30, Cols: 100}, attrs)
	if err != nil {
		a.t.Fatalf("start %v on a terminal: %v", args, err)
	}
	tm := &term{t: a.t, name: strings.Join(args, " "), f: f, cmd: cmd, done: make(chan struct{})}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		buf := make([]byte, 4096)
		for {
			n, err := f.Read(buf)
			tm.mu.Lock()
			tm.out.Write(buf[:n])
			tm.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	go func() {
		err := cmd.Wait()
		tm.code = cmd.ProcessState.ExitCode()
		if err != nil && tm.code == 0 {
			tm.code = -1
		}
		<-copied
		close(tm.done)
	}()
	a.t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-tm.done
		f.Close()
	})
	return tm
}

func (tm *term) screen() string {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return tm.out.String()
}

// expect waits until the output after the last expect shows want, then
// moves past it.
func (tm *term) expect(want string) {
	tm.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		tm.mu.Lock()
		s := tm.out.String()
		i := strings.Index(s[tm.mark:], want)
		if i >= 0 {
			tm.mark += i + len(want)
			tm.mu.Unlock()
			return
		}
		tm.mu.Unlock()
		select {
		case <-tm.done:
			tm.t.Fatalf("%q exited (%d) without showing %q; its terminal:\n%s", tm.name, tm.code, want, s)
		default:
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("%q did not show %q within 2 minutes; its terminal:\n%s", tm.name, want, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (tm *term) typeIn(s string) {
	tm.t.Helper()
	if _, err := io.WriteString(tm.f, s); err != nil {
		tm.t.Fatalf("type into %q: %v", tm.name, err)
	}
}

// exit waits for the process and returns its exit code.
func (tm *term) exit() int {
	tm.t.Helper()
	select {
	case <-tm.done:
		return tm.code
	case <-time.After(2 * time.Minute):
		tm.t.Fatalf("%q did not exit within 2 minutes; its terminal:\n%s", tm.name, tm.screen())
		return -1
	}
}

func TestJourney_PTY(t *testing.T) {
	bin := tmpBins(t)
	t.Run("root", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("the root journey needs root (CI runs as root); the ordinary-user one runs below")
		}
		ptyJourney(t, newActor(t, bin, nil))
	})
	t.Run("ordinary user", func(t *testing.T) {
		if os.Geteuid() != 0 {
			// Already one: the journey as ourselves.
			ptyJourney(t, newActor(t, bin, nil))
			return
		}
		if _, err := exec.LookPath("useradd"); err != nil {
			t.Skip("useradd is not installed")
		}
		name := fmt.Sprintf("ncp%06d", rand.IntN(1000000))
		if out, err := exec.Command("useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name).CombinedOutput(); err != nil {
			t.Fatalf("useradd: %v\n%s", err, out)
		}
		u, err := user.Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		t.Cleanup(func() {
			removeUserCgroups(uid)
			_ = exec.Command("userdel", name).Run()
		})
		if out, err := exec.Command(filepath.Join(bin, "nemoclave"), "setup", "--user", name).CombinedOutput(); err != nil {
			t.Fatalf("setup --user %s: %v\n%s", name, err, out)
		}
		a := newActor(t, bin, &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)})
		ptyJourney(t, a)
	})
}

// newActor lays out a home and a copy of the quickstart under /tmp, owned
// by the user cred names, whose unknown hosts are held for approval.
func newActor(t *testing.T, bin string, cred *syscall.Credential) *actor {
	base, err := os.MkdirTemp("/tmp", "nemoclave-journey-pty-")
	if err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(base, "home")
	dir := filepath.Join(base, "quickstart")
	copyDir(t, filepath.Join(repoRoot(t), "examples", "quickstart"), dir)
	bp := filepath.Join(dir, "blueprint.hcl")
	b, err := os.ReadFile(bp)
	if err != nil {
		t.Fatal(err)
	}
	held := strings.Replace(string(b), `unknown_hosts = "deny"`, `unknown_hosts = "ask"`, 1)
	if held == string(b) {
		t.Fatal(`the quickstart blueprint no longer says unknown_hosts = "deny"; update this test`)
	}
	if err := os.WriteFile(bp, []byte(held), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	a := &actor{t: t, bin: bin, home: home, dir: base, cred: cred,
		env: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + home, "NEMOCLAVE_HOME=" + home, "NEMOCLAVE_BIN_DIR=" + bin, "TERM=xterm-256color", "LANG=C.UTF-8"}}
	if cred != nil {
		_ = filepath.Walk(base, func(p string, _ os.FileInfo, _ error) error { return os.Lchown(p, int(cred.Uid), int(cred.Gid)) })
		_ = os.Chmod(base, 0o755)
	}
	t.Cleanup(func() {
		a.run("daemon", "stop")
		os.RemoveAll(base)
	})
	return a
}

func ptyJourney(t *testing.T, a *actor) {
	bp := filepath.Join(a.dir, "quickstart", "blueprint.hcl")

	// A chat agent, detached: it waits for someone to connect.
	a.must("run", "-d", bp, "--var", "prompt=")
	a.waitState("quickstart", "running")

	// connect, chat, detach: the agent runs on.
	c := a.onPTY("quickstart", "connect")
	c.expect("connecting to the agent in quickstart")
	c.expect("> ")
	c.typeIn("What files are in my workspace?\r")
	c.expect("→ list_files")
	c.expect("sales.csv")
	c.expect("> ")
	// Ctrl-C goes to the agent (SIGINT through the sandbox's terminal):
	// the chat says how to leave and goes on; nothing is torn down.
	c.typeIn("\x03")
	c.expect("press Ctrl-D to leave the chat")
	c.expect("> ")
	c.typeIn("\x10\x11") // Ctrl-P Ctrl-Q
	c.expect("detached from quickstart")
	if code := c.exit(); code != 0 {
		t.Fatalf("connect exited %d after a detach:\n%s", code, c.screen())
	}
	if st := a.state("quickstart"); st != "running" {
		t.Fatalf("after a detach the sandbox is %q, want running\n%s", st, a.logs())
	}

	// Re-attach: the last lines are shown again, and the chat goes on.
	c = a.onPTY("sandbox", "connect", "quickstart")
	c.expect("sales.csv")
	c.typeIn("\x10\x11")
	c.expect("detached from quickstart")
	if code := c.exit(); code != 0 {
		t.Fatalf("the second connect exited %d:\n%s", code, c.screen())
	}

	// A shell beside the agent: the window size follows the terminal and
	// Ctrl-C interrupts the foreground command, not the shell.
	sh := a.onPTY("quickstart", "connect", "--shell")
	sh.typeIn("stty size\r")
	sh.expect("30 100")
	if err := pty.Setsize(sh.f, &pty.Winsize{Rows: 40, Cols: 120}); err != nil {
		t.Fatal(err)
	}
	// SIGWINCH travels CLI → daemon → sandbox; ask until it has arrived.
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(sh.screen(), "40 120") {
		if time.Now().After(deadline) {
			t.Fatalf("the shell never saw the new window size:\n%s", sh.screen())
		}
		sh.typeIn("stty size\r")
		time.Sleep(300 * time.Millisecond)
	}
	sh.typeIn("sleep 300\r")
	time.Sleep(500 * time.Millisecond)
	sh.typeIn("\x03")
	sh.typeIn("echo after-$((6*7))\r")
	sh.expect("after-42")
	sh.typeIn("exit\r")
	if code := sh.exit(); code != 0 {
		t.Fatalf("the shell exited %d:\n%s", code, sh.screen())
	}

	// An egress request to a host no rule names is held; `term` shows it
	// on its approvals tab and approves it, and the request goes on.
	fetched := make(chan result, 1)
	go func() {
		fetched <- a.run("sandbox", "exec", "quickstart", "--", "/bin/sh", "-c",
			`curl -sS --noproxy "" -x "$HTTP_PROXY" -o /dev/null -w "status=%{http_code}\n" http://localhost:9/`)
	}()
	deadline = time.Now().Add(2 * time.Minute)
	for !strings.Contains(a.must("approvals", "list"), "localhost:9") {
		if time.Now().After(deadline) {
			t.Fatalf("the request to localhost:9 was never held for approval\n%s", a.logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The pending approval's id completes (bash asks `__complete`).
	var pending []struct{ ID, Host string }
	if err := json.Unmarshal([]byte(a.must("approvals", "list", "-o", "json")), &pending); err != nil || len(pending) == 0 {
		t.Fatalf("approvals list -o json: %v %+v", err, pending)
	}
	if got := a.must("__complete", "approvals", "approve", ""); !strings.Contains(got, pending[0].ID+"\tquickstart wants localhost") {
		t.Errorf("approvals approve <TAB> offers %q, want the pending id %s", got, pending[0].ID)
	}
	tm := a.onPTY("term")
	tm.expect("Approvals")
	tm.typeIn("3")
	// A table with column headings; the held request under them.
	tm.expect("DESTINATION")
	tm.expect("EXPIRES IN")
	tm.expect("localhost")
	tm.typeIn("a")
	tm.expect("approved")
	// The inference tab: a table of routes and usage, and a token chart.
	tm.typeIn("4")
	tm.expect("ALIAS")
	tm.expect("MODEL")
	tm.expect("THIS MONTH")
	tm.expect("tokens per")
	select {
	case r := <-fetched:
		if !strings.Contains(r.stdout, "status=") {
			t.Errorf("the approved request did not complete: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("the approved request is still waiting\n%s", a.logs())
	}
	tm.typeIn("q")
	if code := tm.exit(); code != 0 {
		t.Fatalf("term exited %d", code)
	}
	if out := a.must("approvals", "list"); !strings.Contains(out, "no pending approvals") {
		t.Errorf("approvals still pending after the approval:\n%s", out)
	}

	// Leave the chat: /exit ends the agent and connect reports it.
	c = a.onPTY("quickstart", "connect")
	c.expect("connecting to the agent in quickstart")
	c.typeIn("/exit\r")
	c.expect("exited with code 0")
	if code := c.exit(); code != 0 {
		t.Fatalf("connect exited %d after the agent did:\n%s", code, c.screen())
	}
	a.waitState("quickstart", "exited")

	// An attached run on a terminal: chat through `run` itself, detach,
	// then connect and leave.
	r := a.onPTY("run", bp, "--var", "prompt=")
	// On a terminal each step spins with its name until it ends.
	r.expect("⠋ launch plugins")
	r.expect("✓ launch plugins")
	r.expect("start agent assistant")
	r.expect("> ")
	r.typeIn("What files are in my workspace?\r")
	r.expect("sales.csv")
	r.expect("> ")
	// Once the agent runs, Ctrl-C is the agent's, not the run's.
	r.typeIn("\x03")
	r.expect("press Ctrl-D to leave the chat")
	r.expect("> ")
	r.typeIn("\x10\x11")
	r.expect("detached from quickstart")
	if code := r.exit(); code != 0 {
		t.Fatalf("run exited %d after a detach:\n%s", code, r.screen())
	}
	if st := a.state("quickstart"); st != "running" {
		t.Fatalf("after detaching from an attached run the sandbox is %q, want running\n%s", st, a.logs())
	}
	c = a.onPTY("quickstart", "connect")
	c.expect("connecting to the agent in quickstart")
	c.typeIn("\x04") // Ctrl-D: end of input
	c.expect("exited with code 0")
	if code := c.exit(); code != 0 {
		t.Fatalf("connect exited %d:\n%s", code, c.screen())
	}
	a.must("sandbox", "delete", "quickstart")
}
