package pluginbox

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/sys/unix"

	"github.com/nemoclave/nemoclave/sandbox/confine"
)

// MaybeInit runs the box's init stage, which becomes the plugin, when this
// process was started as one; otherwise it returns at once. Call it first
// thing in main() (and in TestMain) of any binary used as Box.Launcher.
func MaybeInit() {
	if os.Getenv(initEnvVar) != "1" {
		return
	}
	// Everything from here to the exec happens on this thread: Landlock,
	// seccomp and capabilities are per thread, and the exec keeps only the
	// calling thread's.
	runtime.LockOSThread()
	err := initMain()
	fmt.Fprintf(os.Stderr, "nemoclave plugin box: %v\n", err)
	os.Exit(exitSetupFailed)
}

// initMain builds the box and execs the plugin; it returns only on error.
func initMain() error {
	_ = unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0)
	_ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	// The host writes the config only once this process is in its cgroup.
	raw, err := io.ReadAll(os.NewFile(cfgFD, "config"))
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	var c config
	if err := json.Unmarshal(raw, &c); err != nil || len(c.Argv) == 0 {
		return fmt.Errorf("no usable config from the host (%v)", err)
	}
	if c.Network == NetworkProxy {
		if err := proxyListener(&c); err != nil {
			return fmt.Errorf("egress proxy listener: %w", err)
		}
	}
	if c.Network == NetworkForward {
		if err := forwardListeners(&c); err != nil {
			return fmt.Errorf("forwarded addresses: %w", err)
		}
	}
	plan, err := confine.PlanLandlock(0, false)
	if err != nil {
		return err
	}
	filter, err := confine.BuildSeccomp()
	if err != nil {
		return err
	}
	if err := unix.Sethostname([]byte("plugin-" + safeName(c.Name))); err != nil {
		return fmt.Errorf("set hostname: %w", err)
	}
	if err := buildRoot(&c); err != nil {
		return err
	}
	// Open the binary inside the new view (a path the Landlock rules
	// below cover), check it is the file the host verified, and execute
	// exactly that descriptor.
	exe, err := unix.Open(c.Binary, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open plugin binary %s in the box: %w", c.Binary, err)
	}
	if err := verify(exe, c.SHA256, c.Verified); err != nil {
		return fmt.Errorf("plugin binary %s: %w", c.Binary, err)
	}
	dir := c.Binary[:len(c.Binary)-len(filepath.Base(c.Binary))]
	if len(c.ReadWrite) > 0 {
		dir = c.ReadWrite[0] // the state dir comes first: the plugin's HOME
	}
	if err := os.Chdir(dir); err != nil {
		return err
	}
	// Whatever the plugin creates (a memory database, its journal) is
	// private to the daemon's user (R10), whatever mode it asks for.
	unix.Umask(0o077)
	if err := confine.DropPrivileges(); err != nil {
		return err
	}
	if err := confine.ApplyLandlock(plan, rules(&c), c.Ports); err != nil {
		return err
	}
	if err := confine.LoadSeccomp(filter); err != nil {
		return err
	}
	if isScript(exe) {
		// A script cannot run from a close-on-exec descriptor: the kernel
		// hands its interpreter /dev/fd/N, which is closed by then
		// (ENOENT), and an interpreter must find the script's sibling
		// modules by its path anyway. It runs by path: its directory is
		// bound read-only here, and the host verified every file of a
		// directory plugin before launch and checks them again after the
		// handshake (host/plugins/verify.go).
		return syscall.Exec(c.Binary, c.Argv, c.Env)
	}
	return execFD(exe, c.Argv, c.Env)
}

// isScript reports whether the file open at fd starts with "#!".
func isScript(fd int) bool {
	var magic [2]byte
	n, _ := unix.Pread(fd, magic[:], 0)
	return n == 2 && string(magic[:]) == "#!"
}

// proxyListener brings up lo in the box's empty network namespace, listens
// on 127.0.0.1 there, sends the listener to the host (which serves it with
// the egress gateway under the plugin's policy), and points the plugin's
// proxy variables at it. Landlock then allows TCP connect to that port
// only; there is no route anywhere else.
func proxyListener(c *config) error {
	if err := confine.BringUpLoopback(); err != nil {
		return err
	}
	lfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(lfd)
	if err := unix.Bind(lfd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return err
	}
	if err := unix.Listen(lfd, 128); err != nil {
		return err
	}
	sa, err := unix.Getsockname(lfd)
	if err != nil {
		return err
	}
	port := sa.(*unix.SockaddrInet4).Port
	if err := unix.Sendmsg(proxyFD, []byte{0}, unix.UnixRights(lfd), nil, 0); err != nil {
		return fmt.Errorf("send it to the host: %w", err)
	}
	_ = unix.Close(proxyFD)
	c.Ports = []int{port}
	// Whatever proxy the host's environment named is replaced: the box
	// has one way out.
	env := c.Env[:0:0]
	for _, kv := range c.Env {
		name, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(name) {
		case "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY":
			continue
		}
		env = append(env, kv)
	}
	u := "http://127.0.0.1:" + strconv.Itoa(port)
	for _, n := range []string{"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"} {
		env = append(env, n+"="+u, strings.ToLower(n)+"="+u)
	}
	c.Env = env
	return nil
}

// rules are the only paths the plugin may use: the system read-only, its
// binary's directory and ReadOnly paths readable, ReadWrite paths, the
// socket directory and /tmp writable.
func rules(c *config) []confine.PathRule {
	rs := []confine.PathRule{
		{Path: "/proc", Access: ll.AccessFSReadFile | ll.AccessFSReadDir},
		{Path: "/tmp", Access: confine.FSAll},
		{Path: filepath.Dir(c.Binary), Access: confine.FSRead},
	}
	for _, d := range confine.SystemDirs {
		rs = append(rs, confine.PathRule{Path: d, Access: confine.FSRead})
	}
	for _, n := range confine.DevNodes {
		rs = append(rs, confine.PathRule{Path: n, Access: confine.FSDevice})
	}
	for _, p := range c.ReadOnly {
		rs = append(rs, confine.PathRule{Path: filepath.Clean(p), Access: confine.FSRead})
	}
	for _, p := range c.ReadWrite {
		rs = append(rs, confine.PathRule{Path: filepath.Clean(p), Access: confine.FSAll})
	}
	return rs
}

// verify checks that the file open at fd has the sha256 want; a file
// whose identity is verified (the one the host hashed, unchanged; see
// Profile.Verified) is not read again.
func verify(fd int, want []byte, verified *FileID) error {
	if verified != nil {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return fmt.Errorf("stat: %w", err)
		}
		if IdentityOf(&st) == *verified {
			return nil
		}
	}
	h := sha256.New()
	// Hash through a dup so closing f does not close the fd to execute.
	dup, err := unix.Dup(fd)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(dup), "plugin")
	defer f.Close()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("hash: %w", err)
	}
	if got := h.Sum(nil); !bytes.Equal(got, want) {
		return fmt.Errorf("checksums did not match (sha256 %x, expected %x): the file changed after nemoclave hashed it; refusing to run it", got, want)
	}
	return nil
}

// execFD replaces this process with the program open at fd
// (execveat(fd, "", AT_EMPTY_PATH)).
func execFD(fd int, argv, env []string) error {
	empty, err := syscall.BytePtrFromString("")
	if err != nil {
		return err
	}
	argvp, err := syscall.SlicePtrFromStrings(argv)
	if err != nil {
		return err
	}
	envp, err := syscall.SlicePtrFromStrings(env)
	if err != nil {
		return err
	}
	_, _, e := unix.Syscall6(unix.SYS_EXECVEAT, uintptr(fd), uintptr(unsafe.Pointer(empty)),
		uintptr(unsafe.Pointer(&argvp[0])), uintptr(unsafe.Pointer(&envp[0])), unix.AT_EMPTY_PATH, 0)
	return fmt.Errorf("exec plugin: %w", syscall.Errno(e))
}
