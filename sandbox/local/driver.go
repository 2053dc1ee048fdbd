package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nemoclave/nemoclave/policy"
	"github.com/nemoclave/nemoclave/sandbox"
	"github.com/nemoclave/nemoclave/sandbox/confine"
)

// Config configures the local driver.
type Config struct {
	// StateRoot holds one directory per sandbox. It must be private to the
	// supervisor (mode 0700): it holds agent logs and the sandbox roots.
	StateRoot string
	// CgroupParent is where sandbox cgroups are created: an absolute path
	// is taken from each hierarchy's root, a relative one from the
	// supervisor's own cgroup in each hierarchy (v1 hierarchies may place
	// the supervisor differently). Empty means "nemoclave". An unprivileged
	// supervisor needs a parent delegated to its uid (systemd
	// Delegate=yes, or a directory chowned to it by root), or sandboxes
	// refuse to start unless they set Resources.AllowUnlimited.
	CgroupParent string
	// DaemonHome is $NEMOCLAVE_HOME: a policy path exposing it (or
	// StateRoot) is refused (F19). Empty checks StateRoot only.
	DaemonHome string
	// Executable is the binary re-executed as the init stage; it must call
	// MaybeInit first thing. Empty means /proc/self/exe.
	Executable string
	// Binary is the host path of the nemoclave binary that every sandbox
	// sees read-only at BinaryPath (on the sandbox PATH). Empty means the
	// supervisor's own binary.
	Binary string
	// LogMaxBytes caps each agent.log; the sandbox rotates it to
	// agent.log.1 past the cap, so one sandbox's output never takes more
	// than twice this on disk. Zero means DefaultLogMaxBytes.
	LogMaxBytes int64
}

// Driver is the local sandbox driver. Create one per state root.
type Driver struct {
	cfg Config

	mu      sync.Mutex
	running map[string]*running
	locks   map[string]*sync.Mutex
}

var _ sandbox.Driver = (*Driver)(nil)

// New returns a driver storing state under cfg.StateRoot.
func New(cfg Config) (*Driver, error) {
	if cfg.StateRoot == "" || !filepath.IsAbs(cfg.StateRoot) {
		return nil, fmt.Errorf("local driver: state root %q must be an absolute path", cfg.StateRoot)
	}
	if err := os.MkdirAll(cfg.StateRoot, 0o700); err != nil {
		return nil, fmt.Errorf("local driver: create state root: %w", err)
	}
	if cfg.Executable == "" {
		cfg.Executable = "/proc/self/exe"
	}
	if cfg.Binary == "" {
		// Resolved here, in the supervisor's mount namespace: init's own
		// /proc/self/exe belongs to that namespace, and a mount cannot be
		// cloned from another one.
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("local driver: find the nemoclave binary to expose in sandboxes: %w", err)
		}
		cfg.Binary = exe
	}
	return &Driver{cfg: cfg, running: map[string]*running{}, locks: map[string]*sync.Mutex{}}, nil
}

// cgroupLeaf names a sandbox's cgroup: its name plus a digest of the state
// root, so two supervisors (two state roots) that both run a sandbox called
// "assistant" under the same cgroup parent never share a cgroup.
func (d *Driver) cgroupLeaf(name string) string {
	sum := sha256.Sum256([]byte(d.cfg.StateRoot))
	return name + "-" + hex.EncodeToString(sum[:4])
}

// lock serialises lifecycle operations on one sandbox.
func (d *Driver) lock(name string) func() {
	d.mu.Lock()
	l, ok := d.locks[name]
	if !ok {
		l = &sync.Mutex{}
		d.locks[name] = l
	}
	d.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// Create validates spec and records the sandbox.
func (d *Driver) Create(ctx context.Context, spec sandbox.Spec) (sandbox.Info, error) {
	if err := validateSpec(&spec); err != nil {
		return sandbox.Info{}, fmt.Errorf("sandbox %q: %w", spec.Name, err)
	}
	if err := d.checkDaemonPaths(&spec); err != nil {
		return sandbox.Info{}, fmt.Errorf("sandbox %q: %w", spec.Name, err)
	}
	spec.Policy = spec.Policy.Clone()
	defer d.lock(spec.Name)()
	if err := os.Mkdir(d.dir(spec.Name), 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return sandbox.Info{}, fmt.Errorf("%w: %s", sandbox.ErrExists, spec.Name)
		}
		return sandbox.Info{}, fmt.Errorf("sandbox %s: create state: %w", spec.Name, err)
	}
	r := &record{Spec: spec, Info: sandbox.Info{
		Name: spec.Name, Driver: "local", State: sandbox.StateCreated, CreatedAt: time.Now().UTC(), ExitCode: -1,
	}}
	if err := d.save(r); err != nil {
		_ = os.RemoveAll(d.dir(spec.Name))
		return sandbox.Info{}, err
	}
	return r.Info, nil
}

// Status reports one sandbox, reconciling the record with the processes
// actually alive.
func (d *Driver) Status(ctx context.Context, name string) (sandbox.Info, error) {
	if sandbox.ValidName(name) != nil {
		return sandbox.Info{}, fmt.Errorf("%w: %q", sandbox.ErrNotFound, name)
	}
	d.mu.Lock()
	run := d.running[name]
	d.mu.Unlock()
	if run != nil {
		return run.info(), nil
	}
	r, err := d.load(name)
	if err != nil {
		return sandbox.Info{}, err
	}
	return d.reconcile(r), nil
}

// reconcile fixes up a record whose supervisor is not this process.
func (d *Driver) reconcile(r *record) sandbox.Info {
	info := r.Info
	if info.State != sandbox.StateRunning {
		return info
	}
	if r.InitPid > 0 && procStart(r.InitPid) == r.InitStart {
		return info // still alive, owned by another (or an earlier) driver
	}
	if e, ok := d.readExit(r.Spec.Name); ok {
		info.State, info.ExitCode, info.Signal, info.ExitedAt = sandbox.StateExited, e.Code, e.Signal, e.At
		return info
	}
	info.State = sandbox.StateLost
	info.Reason = "its supervisor went away before the agent's exit was recorded; the sandbox was killed with it"
	return info
}

// List reports every sandbox under the state root.
func (d *Driver) List(ctx context.Context) ([]sandbox.Info, error) {
	ents, err := os.ReadDir(d.cfg.StateRoot)
	if err != nil {
		return nil, fmt.Errorf("list sandboxes: %w", err)
	}
	var out []sandbox.Info
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		info, err := d.Status(ctx, e.Name())
		if err != nil {
			if errors.Is(err, sandbox.ErrNotFound) {
				continue // a directory being created or deleted
			}
			return nil, err
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Logs returns the agent's output so far.
func (d *Driver) Logs(ctx context.Context, name string) (io.ReadCloser, error) {
	if _, err := d.Status(ctx, name); err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(d.dir(name), "agent.log"))
	if errors.Is(err, os.ErrNotExist) {
		return io.NopCloser(&emptyReader{}), nil
	}
	return f, err
}

type emptyReader struct{}

func (emptyReader) Read([]byte) (int, error) { return 0, io.EOF }

// Wait blocks until the agent has exited.
func (d *Driver) Wait(ctx context.Context, name string) (sandbox.Info, error) {
	d.mu.Lock()
	run := d.running[name]
	d.mu.Unlock()
	if run == nil {
		return d.Status(ctx, name)
	}
	select {
	case <-run.done:
		return run.info(), nil
	case <-ctx.Done():
		return sandbox.Info{}, ctx.Err()
	}
}

// Stop sends SIGTERM to the agent (through init) and kills the whole tree
// after grace.
func (d *Driver) Stop(ctx context.Context, name string, grace time.Duration) error {
	defer d.lock(name)() // not while Start is still launching it
	d.mu.Lock()
	run := d.running[name]
	d.mu.Unlock()
	if run == nil {
		return d.killOrphan(name, "stopped")
	}
	run.setReason("stopped")
	_ = run.cmd.Process.Signal(syscall.SIGTERM) // pidfd-backed: safe against pid reuse
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-run.done:
		return nil
	case <-t.C:
	case <-ctx.Done():
	}
	run.kill("stopped")
	<-run.done
	return ctx.Err()
}

// killOrphan kills a sandbox whose init this driver did not start (a
// supervisor restart within one process, or a record from elsewhere).
func (d *Driver) killOrphan(name, reason string) error {
	r, err := d.load(name)
	if err != nil {
		return err
	}
	if r.Info.State != sandbox.StateRunning {
		return nil
	}
	if r.InitPid > 0 && procStart(r.InitPid) == r.InitStart {
		if pidfd, err := unix.PidfdOpen(r.InitPid, 0); err == nil {
			if procStart(r.InitPid) == r.InitStart {
				_ = unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0)
			}
			unix.Close(pidfd)
		}
	}
	r.Cgroup.Kill()
	info := d.reconcile(r)
	if info.State == sandbox.StateRunning || info.State == sandbox.StateLost {
		info.State, info.Reason = sandbox.StateExited, reason
	}
	r.Info = info
	return d.save(r)
}

// Delete kills everything the sandbox runs and removes its state.
func (d *Driver) Delete(ctx context.Context, name string) error {
	if sandbox.ValidName(name) != nil {
		return fmt.Errorf("%w: %q", sandbox.ErrNotFound, name)
	}
	defer d.lock(name)() // not while Start is still launching it
	d.mu.Lock()
	run := d.running[name]
	d.mu.Unlock()
	if run != nil {
		run.kill("deleted")
		<-run.done
		<-run.cleaned
	} else if err := d.killOrphan(name, "deleted"); err != nil && !errors.Is(err, sandbox.ErrNotFound) {
		return err
	}
	r, err := d.load(name)
	if err != nil {
		return err
	}
	var errs []error
	if err := r.Cgroup.Remove(); err != nil {
		errs = append(errs, err)
	}
	d.removePlaceholders(name, r)
	if err := removeStateDir(d.dir(name)); err != nil {
		errs = append(errs, fmt.Errorf("remove state: %w", err))
	}
	d.mu.Lock()
	delete(d.running, name)
	d.mu.Unlock()
	return errors.Join(errs...)
}

// Start launches the sandbox.
func (d *Driver) Start(ctx context.Context, name string) (*sandbox.Started, error) {
	unlock := d.lock(name)
	defer unlock()
	r, err := d.load(name)
	if err != nil {
		return nil, err
	}
	if r.Info.State != sandbox.StateCreated {
		return nil, fmt.Errorf("sandbox %s is %s; a sandbox starts once — delete and create it again", name, r.Info.State)
	}
	run, listeners, err := d.launch(ctx, r)
	if err != nil {
		r.Info.State, r.Info.Reason, r.Info.ExitedAt = sandbox.StateExited, "start failed: "+err.Error(), time.Now().UTC()
		_ = d.save(r)
		return nil, fmt.Errorf("sandbox %s: %w", name, err)
	}
	d.mu.Lock()
	d.running[name] = run
	d.mu.Unlock()
	go run.supervise(d)
	return &sandbox.Started{Info: run.info(), Listeners: listeners}, nil
}

// launch does the work of Start: cgroup, placeholders, init process,
// handshake. On error everything it created is undone.
func (d *Driver) launch(ctx context.Context, r *record) (_ *running, _ map[string]net.Listener, err error) {
	spec := r.Spec
	dir := d.dir(spec.Name)
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()

	res := spec.Resources
	if mp := int64(spec.Policy.Process.MaxProcesses); mp > 0 && (res.Pids == 0 || mp < res.Pids) {
		// The policy's process limit also bounds the pids cgroup: as host
		// root RLIMIT_NPROC cannot express it (see applyRlimits).
		res.Pids = mp
	}
	cg, cgErr := confine.NewCgroup(d.cfg.CgroupParent, d.cgroupLeaf(spec.Name), res)
	if cgErr != nil {
		if !spec.Resources.AllowUnlimited {
			return nil, nil, cgErr
		}
		cg = nil
	}
	undo = append(undo, func() { _ = cg.Remove() })
	r.Cgroup = cg

	if spec.Resources.WorkspaceBytes > 0 && !spec.Resources.AllowUnlimited && !mountRoot(spec.Workspace) {
		return nil, nil, fmt.Errorf("resources.workspace_size is set but the workspace %s is not covered by a volume: the caller mounts one (package sandbox/volume) before the sandbox starts; the sandbox refuses to run unbounded", spec.Workspace)
	}
	protected, _ := protectedPaths(spec.Policy.Filesystem.EffectiveProtected())
	protected = gitFileAware(spec.Workspace, protected)
	ph, err := makePlaceholders(spec.Workspace, protected)
	r.Placeholders = ph
	if err != nil {
		return nil, nil, err
	}
	// 0700 like every directory under the home (R10): the sandbox sees
	// the tmpfs mounted on it, never this directory's own mode.
	if err := os.MkdirAll(filepath.Join(dir, "rootfs"), 0o700); err != nil {
		return nil, nil, fmt.Errorf("create root mount point: %w", err)
	}
	logf, err := os.OpenFile(filepath.Join(dir, "agent.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("open agent log: %w", err)
	}
	defer logf.Close()
	if cgErr != nil {
		fmt.Fprintf(logf, "nemoclave: WARNING: running without cgroup limits because resources.allow_unlimited is set: %v\n", cgErr)
	}
	stateDir, err := os.Open(dir)
	if err != nil {
		return nil, nil, err
	}
	defer stateDir.Close()
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("control socket: %w", err)
	}
	ctl, child := pair[0], os.NewFile(uintptr(pair[1]), "sandbox-ctl")
	undo = append(undo, func() { unix.Close(ctl) })

	cmd := exec.Command(d.cfg.Executable)
	cmd.Args = []string{"nemoclave-sandbox-init"}
	cmd.Env = []string{initEnvVar + "=1"}
	if v, ok := os.LookupEnv("GORACE"); ok {
		// Only race-instrumented builds (tests) read it; atexit_sleep_ms=0
		// keeps each init from idling a second on exit.
		cmd.Env = append(cmd.Env, "GORACE="+v)
	}
	cmd.ExtraFiles = []*os.File{child, logf, stateDir}
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWIPC |
			unix.CLONE_NEWUTS | unix.CLONE_NEWCGROUP,
		Pdeathsig: unix.SIGKILL,
		Setsid:    true,
	}
	if os.Geteuid() != 0 {
		cmd.SysProcAttr.Cloneflags |= unix.CLONE_NEWUSER
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
		cmd.SysProcAttr.GidMappingsEnableSetgroups = false
	}
	if cg != nil && cg.V2 {
		cgfd, err := unix.Open(cg.Dirs[0], unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, nil, confine.CgroupErr(err)
		}
		defer unix.Close(cgfd)
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, cgfd
	}
	err = confine.StartOnForkThread(cmd)
	child.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("start the sandbox init stage (%s): %w; unprivileged users need user namespaces enabled (sysctl user.max_user_namespaces > 0)", d.cfg.Executable, err)
	}
	undo = append(undo, func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if cg != nil && !cg.V2 {
		if err := cg.Place(cmd.Process.Pid); err != nil {
			return nil, nil, err
		}
	}

	env := sandboxEnv(spec.Name, spec.Env, nil)
	cfg := &initConfig{
		Name: spec.Name, Rootfs: filepath.Join(dir, "rootfs"), Workspace: spec.Workspace, Policy: spec.Policy,
		Argv: spec.Command, Env: env, Protected: protected, TmpBytes: tmpBytes(spec.Resources),
		Binary: d.cfg.Binary, LogMaxBytes: d.cfg.LogMaxBytes, Stdin: string(spec.Stdin), Files: spec.Files,
	}
	for _, l := range spec.Listeners {
		cfg.Listeners = append(cfg.Listeners, l.Name)
	}
	if os.Geteuid() == 0 {
		// A root supervisor runs the agent as whoever owns the workspace,
		// so host permissions (root-only files and sockets in granted
		// paths) apply to it and its files belong to that user. A
		// root-owned workspace keeps uid 0, without any capability.
		var st unix.Stat_t
		if err := unix.Stat(spec.Workspace, &st); err == nil && st.Uid != 0 {
			cfg.RunAs = &[2]int{int(st.Uid), int(st.Gid)}
		}
	}
	if err := send(ctl, message{Op: opConfig, Config: cfg}); err != nil {
		return nil, nil, err
	}

	// Handshake: listeners, then started (or an error at any point). A
	// cancelled ctx kills init, which closes the socket and ends recv.
	stop := context.AfterFunc(ctx, func() { _ = cmd.Process.Kill() })
	defer stop()
	listeners := map[string]net.Listener{}
	undo = append(undo, func() {
		for _, l := range listeners {
			l.Close()
		}
	})
	ports := map[string]int{}
	for {
		m, files, err := recv(ctl)
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			return nil, nil, fmt.Errorf("sandbox init stage died during setup (see %s): %w", filepath.Join(dir, "agent.log"), err)
		}
		switch m.Op {
		case opError:
			closeAll(files)
			return nil, nil, errors.New(m.Error)
		case opListeners:
			if len(files) != len(m.Names) || len(m.Ports) != len(m.Names) {
				closeAll(files)
				return nil, nil, errors.New("init stage sent a malformed listener message")
			}
			for i, f := range files {
				l, err := net.FileListener(f)
				f.Close()
				if err != nil {
					return nil, nil, fmt.Errorf("listener %s: %w", m.Names[i], err)
				}
				listeners[m.Names[i]] = l
				ports[m.Names[i]] = m.Ports[i]
			}
		case opStarted:
			var input *os.File
			if spec.Stdin != sandbox.StdinNull && len(files) > 0 {
				input, files = files[0], files[1:]
			}
			closeAll(files)
			now := time.Now().UTC()
			r.Info.State, r.Info.StartedAt, r.Info.Ports = sandbox.StateRunning, now, ports
			r.InitPid, r.InitStart = cmd.Process.Pid, procStart(cmd.Process.Pid)
			if err := d.save(r); err != nil {
				return nil, nil, err
			}
			run := &running{
				cmd: cmd, ctl: ctl, rec: r, env: sandboxEnv(spec.Name, spec.Env, ports),
				done: make(chan struct{}), cleaned: make(chan struct{}), waiters: map[int]chan envelope{},
				input: input, inputTTY: spec.Stdin == sandbox.StdinTTY,
			}
			if spec.Timeout > 0 {
				run.timer = time.AfterFunc(spec.Timeout, func() { run.kill("timeout") })
			}
			return run, listeners, nil
		default:
			closeAll(files)
		}
	}
}

// mountRoot says whether dir is the root of a mount.
func mountRoot(dir string) bool {
	var stx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, dir, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_BASIC_STATS, &stx); err != nil {
		return false
	}
	if stx.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0 {
		return stx.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0
	}
	var parent unix.Stat_t
	if err := unix.Stat(filepath.Dir(dir), &parent); err != nil {
		return false
	}
	return uint64(unix.Mkdev(stx.Dev_major, stx.Dev_minor)) != parent.Dev
}

func tmpBytes(res sandbox.Resources) int64 {
	if res.TmpBytes > 0 {
		return res.TmpBytes
	}
	if res.MemoryBytes > 0 {
		return res.MemoryBytes
	}
	return DefaultMemoryBytes
}

// UpdatePolicy records a new policy revision. The running sandbox keeps the
// filesystem, process and Landlock rules it started with: a kernel-enforced
// sandbox cannot be widened from outside without a restart, and that is the
// guarantee (L3). The recorded revision is what Status and a later
// re-creation see.
func (d *Driver) UpdatePolicy(ctx context.Context, name string, p *policy.Policy) error {
	if err := p.Validate(); err != nil {
		return fmt.Errorf("sandbox %s: new policy is invalid, keeping the old one: %w", name, err)
	}
	defer d.lock(name)()
	d.mu.Lock()
	run := d.running[name]
	d.mu.Unlock()
	if run != nil {
		run.mu.Lock()
		run.rec.Spec.Policy = p.Clone()
		err := d.save(run.rec)
		run.mu.Unlock()
		return err
	}
	r, err := d.load(name)
	if err != nil {
		return err
	}
	r.Spec.Policy = p.Clone()
	return d.save(r)
}

// removeStateDir removes a sandbox's state directory. A supervisor that
// still watches the sandbox (another driver over the same state root) may
// write its final state.json while the directory is being removed; the
// removal is retried briefly instead of failing on ENOTEMPTY.
func removeStateDir(dir string) error {
	var err error
	for range 10 {
		if err = os.RemoveAll(dir); err == nil || !errors.Is(err, syscall.ENOTEMPTY) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}
