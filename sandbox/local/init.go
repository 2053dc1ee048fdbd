package local

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/nemoclave/nemoclave/sandbox"
	"github.com/nemoclave/nemoclave/sandbox/confine"
)

// The init stage is this package's code running as PID 1 of the sandbox:
// the supervisor re-executes its own binary with initEnvVar set, inside the
// new namespaces, and MaybeInit takes over before main does anything else.

const initEnvVar = "_NEMOCLAVE_SANDBOX_INIT"

// Descriptors the supervisor passes to the init stage (ExtraFiles order).
const (
	ctlFD   = 3 // SOCK_SEQPACKET control socket
	logFD   = 4 // agent.log, the agent's stdout and stderr
	stateFD = 5 // the sandbox's state directory, for exit.json
)

// exitSetupFailed is init's exit code when it could not build the sandbox.
const exitSetupFailed = 125

// MaybeInit runs the sandbox init stage and never returns when this process
// was started as one; otherwise it returns immediately. Call it first thing
// in main() (and in TestMain), before flags, logging or goroutines.
func MaybeInit() {
	if os.Getenv(initEnvVar) != "1" {
		return
	}
	os.Exit(initMain())
}

type spawnReq struct {
	id    int
	argv  []string
	env   []string
	files []uintptr
	tty   bool
	resp  chan error
}

type initStage struct {
	cfg   *initConfig
	ports []int

	reqs chan spawnReq

	mu       sync.Mutex
	procs    map[int]int // pid → request ID (0 is the agent)
	agentPid int

	// drained closes once the agent's output pipe reached EOF and all of
	// it is in the log.
	drained chan struct{}
}

func initMain() int {
	// Die with the supervisor, even if the kernel cleared the flag set at
	// clone when this process changed credentials entering its user ns.
	_ = unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0)
	// Nothing inherited past stdio may reach the agent.
	_ = unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	_ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)

	m, files, err := recv(ctlFD)
	closeAll(files)
	if err != nil || m.Op != opConfig || m.Config == nil {
		fmt.Fprintf(os.Stderr, "nemoclave init: no configuration from the supervisor: %v\n", err)
		return exitSetupFailed
	}
	s := &initStage{cfg: m.Config, reqs: make(chan spawnReq), procs: map[int]int{}}
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs, unix.SIGCHLD, unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2)
	if err := s.setup(); err != nil {
		_ = send(ctlFD, message{Op: opError, Error: err.Error()})
		return exitSetupFailed
	}
	return s.reap(sigs)
}

// setup builds the sandbox and starts the agent. Checks that can refuse
// come first, so a refusal happens before anything is mounted.
func (s *initStage) setup() error {
	cfg := s.cfg
	plan, err := confine.PlanLandlock(cfg.Policy.Landlock.MinABI, cfg.Policy.Landlock.BestEffort)
	if err != nil {
		return err
	}
	filter, err := confine.BuildSeccomp()
	if err != nil {
		return err
	}
	if err := confine.BringUpLoopback(); err != nil {
		return err
	}
	lfiles, ports, err := openListeners(cfg.Listeners)
	if err != nil {
		return err
	}
	fds := make([]int, len(lfiles))
	for i, f := range lfiles {
		fds[i] = int(f.Fd())
	}
	err = send(ctlFD, message{Op: opListeners, Names: cfg.Listeners, Ports: ports}, fds...)
	closeAll(lfiles)
	if err != nil {
		return err
	}
	s.ports = ports
	if err := unix.Sethostname([]byte("sandbox-" + cfg.Name)); err != nil {
		return fmt.Errorf("set hostname: %w", err)
	}
	if err := buildRoot(cfg); err != nil {
		return err
	}
	if err := confine.ApplyRlimits(cfg.Policy.Process, isUserNS()); err != nil {
		return err
	}
	ready := make(chan error)
	go s.spawner(plan, filter, ready)
	if err := <-ready; err != nil {
		return err
	}

	null, err := os.Open("/dev/null")
	if err != nil {
		return err
	}
	defer null.Close()
	env := append(listenerEnvFor(cfg.Listeners, ports), cfg.Env...)
	// The agent's stdout and stderr are a pipe this stage drains into the
	// log (F18): never the host log file itself, which the agent could
	// otherwise truncate, fallocate or chmod through fd 1, or fill without
	// bound. The pipe is blocking (os.Pipe would hand the agent a
	// non-blocking one, and writers that do not expect EAGAIN would fail).
	if cfg.Stdin == string(sandbox.StdinTTY) {
		return s.startOnTerminal(env)
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return fmt.Errorf("agent output pipe: %w", err)
	}
	stdin, input := null.Fd(), -1
	if cfg.Stdin == string(sandbox.StdinPipe) {
		// The supervisor gets the write end: console input, and EOF when
		// it closes it.
		var in [2]int
		if err := unix.Pipe2(in[:], unix.O_CLOEXEC); err != nil {
			unix.Close(p[0])
			unix.Close(p[1])
			return fmt.Errorf("agent input pipe: %w", err)
		}
		defer unix.Close(in[0])
		defer unix.Close(in[1])
		stdin, input = uintptr(in[0]), in[1]
	}
	err = s.spawn(0, cfg.Argv, env, []uintptr{stdin, uintptr(p[1]), uintptr(p[1])}, false)
	unix.Close(p[1])
	if err != nil {
		unix.Close(p[0])
		return err
	}
	s.drained = make(chan struct{})
	go s.drain(os.NewFile(uintptr(p[0]), "agent output"), logLimit(cfg.LogMaxBytes))
	if input >= 0 {
		return send(ctlFD, message{Op: opStarted, ID: 0, Pid: s.agentPid}, input)
	}
	return send(ctlFD, message{Op: opStarted, ID: 0, Pid: s.agentPid})
}

// startOnTerminal starts the agent on a terminal from the sandbox's own
// devpts: stdin, stdout and stderr are its side, it is the session's
// controlling terminal (Ctrl-C becomes SIGINT for the agent's foreground
// process group), and this stage drains the controlling side into the log
// as it drains the pipe otherwise (F18). The supervisor gets a copy of the
// controlling side to type into and resize; only this stage reads it.
func (s *initStage) startOnTerminal(env []string) error {
	master, slave, err := openPTY()
	if err != nil {
		return err
	}
	defer master.Close()
	// No CR before each LF: the log keeps the agent's own line ends, as
	// with a pipe; the operator's CLI adds CRs for its raw terminal.
	if t, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS); err == nil {
		t.Oflag &^= unix.ONLCR
		_ = unix.IoctlSetTermios(int(slave.Fd()), unix.TCSETS, t)
	}
	fd := slave.Fd()
	err = s.spawn(0, s.cfg.Argv, env, []uintptr{fd, fd, fd}, true)
	slave.Close()
	if err != nil {
		return err
	}
	out, err := dupFile(master, "agent terminal")
	if err != nil {
		return err
	}
	s.drained = make(chan struct{})
	// Reading the controlling side ends with EIO once every holder of the
	// terminal side has exited; drain stops at any error.
	go s.drain(out, logLimit(s.cfg.LogMaxBytes))
	return send(ctlFD, message{Op: opStarted, ID: 0, Pid: s.agentPid}, int(master.Fd()))
}

// dupFile duplicates f (close-on-exec) as an independent *os.File.
func dupFile(f *os.File, name string) (*os.File, error) {
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("duplicate %s: %w", name, err)
	}
	return os.NewFile(uintptr(fd), name), nil
}

func listenerEnvFor(names []string, ports []int) []string {
	m := map[string]int{}
	for i, n := range names {
		m[n] = ports[i]
	}
	return listenerEnv(m)
}

func isUserNS() bool {
	b, err := os.ReadFile("/proc/self/uid_map")
	return err == nil && !strings.Contains(string(b), "4294967295")
}

// spawner owns the only thread that gives up its privileges: it drops
// capabilities, applies Landlock and seccomp to itself, then forks every
// sandboxed process, which inherit exactly that thread's credentials. The
// goroutine never unlocks its thread, so the thread is never reused for
// other Go code and dies with the goroutine.
func (s *initStage) spawner(plan confine.LandlockPlan, filter []bpf.RawInstruction, ready chan<- error) {
	runtime.LockOSThread()
	if unix.Gettid() == unix.Getpid() {
		// Never restrict the thread-group leader: signals and /proc
		// accesses aimed at PID 1 are judged by its credentials, and a
		// leader inside the agent's Landlock domain would let the agent
		// signal PID 1. Keep the leader parked and try another thread.
		go s.spawner(plan, filter, ready)
		select {}
	}
	if err := confine.SwitchUser(s.cfg.RunAs); err != nil {
		ready <- err
		return
	}
	if err := confine.DropPrivileges(); err != nil {
		ready <- err
		return
	}
	if err := confine.ApplyLandlock(plan, append(confine.PolicyRules(s.cfg.Policy), confine.PathRule{Path: binaryDir, Access: confine.FSRead}), s.ports); err != nil {
		ready <- err
		return
	}
	if err := confine.LoadSeccomp(filter); err != nil {
		ready <- err
		return
	}
	ready <- nil
	for r := range s.reqs {
		r.resp <- s.forkLocked(r)
	}
}

func (s *initStage) forkLocked(r spawnReq) error {
	argv0, err := lookPath(r.argv[0], r.env)
	if err != nil {
		return err
	}
	attr := &syscall.ProcAttr{
		Dir:   "/workspace",
		Env:   r.env,
		Files: r.files,
		Sys:   &syscall.SysProcAttr{Setsid: true, Setctty: r.tty, Ctty: 0},
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pid, err := syscall.ForkExec(argv0, r.argv, attr)
	if err != nil {
		return fmt.Errorf("start %s in the sandbox: %w", r.argv[0], err)
	}
	s.procs[pid] = r.id
	if r.id == 0 {
		s.agentPid = pid
	}
	return nil
}

func (s *initStage) spawn(id int, argv, env []string, files []uintptr, tty bool) error {
	resp := make(chan error)
	s.reqs <- spawnReq{id: id, argv: argv, env: env, files: files, tty: tty, resp: resp}
	return <-resp
}

// lookPath resolves argv[0] on the sandbox PATH, inside the sandbox view.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		if _, err := os.Stat(name); err != nil {
			return "", fmt.Errorf("agent command %s: %w", name, err)
		}
		return name, nil
	}
	path := sandboxPath
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("command %q not found on the sandbox PATH (%s); install it under a read-only path the policy grants, or give its absolute path", name, path)
}
