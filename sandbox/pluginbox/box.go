package pluginbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/nemoclave/nemoclave/sandbox"
)

// Network is what a confined plugin may reach.
type Network int

const (
	// NetworkNone gives the plugin a network namespace of its own with
	// nothing in it: every connect fails, loopback included.
	NetworkNone Network = iota
	// NetworkHost leaves the plugin in the host's network namespace with
	// Landlock limiting TCP connect to Profile.Ports (and abstract unix
	// sockets scoped away). For plugins that call a provider or a database.
	NetworkHost
	// NetworkProxy gives the plugin a network namespace of its own whose
	// only reachable address is an HTTP proxy listener on 127.0.0.1 inside
	// it (HTTP_PROXY, HTTPS_PROXY and ALL_PROXY point there). The init
	// stage creates the listener and hands it to the host, which serves it
	// with Profile.Egress: the daemon's egress gateway under a per-plugin
	// policy, so every connection is judged and audited with the plugin's
	// identity, and a direct connect gets ENETUNREACH.
	NetworkProxy
	// NetworkForward gives the plugin a network namespace of its own in
	// which only Profile.Forwards are reachable: for each, the init stage
	// listens inside the box on the address the plugin will dial (the
	// address itself when it is an IP literal, or a loopback address that
	// the box's /etc/hosts gives the name) and hands the listener to the
	// host, which connects each accepted connection to that one host and
	// port and copies bytes both ways. For plugins that talk to a
	// database: they reach their configured server and nothing else, with
	// the server's name unchanged (TLS verification keeps working).
	NetworkForward
)

func (n Network) String() string {
	switch n {
	case NetworkHost:
		return "host"
	case NetworkProxy:
		return "proxy"
	case NetworkForward:
		return "forward"
	}
	return "none"
}

// Profile is what one plugin process may see and do. Paths are absolute
// host paths; each appears at the same path inside the box, so a plugin's
// config needs no translation.
type Profile struct {
	// Name labels the box (kind.name): hostname, cgroup and errors.
	Name string
	// Binary is the plugin executable and SHA256 its expected digest; the
	// box hashes the very file descriptor it executes, so a binary swapped
	// after the host hashed it never runs. Its directory is readable.
	Binary string
	SHA256 []byte
	// Verified, when set, is the identity Binary had when the host found
	// its hash (host/plugins/verify.go: by identity only once its ctime is
	// old enough to stand for its content). The box hashes the descriptor
	// it executes only when that descriptor's identity differs: the same
	// inode with the same size, mtime and ctime is the file the host
	// verified, unchanged (any write, truncate, chmod or rename moves
	// ctime, which userspace cannot set back); any other file is hashed
	// and refused unless it matches SHA256. Nil: always hashed.
	Verified *FileID
	// ReadOnly and ReadWrite are the only host paths the plugin sees beside
	// the system directories (read-only, secrets masked).
	ReadOnly, ReadWrite []string
	// Network and, with NetworkHost, the TCP ports it may connect to.
	Network Network
	Ports   []int
	// Egress serves the proxy listener of a NetworkProxy box until ctx
	// ends (the box stopped). Required with NetworkProxy.
	Egress func(ctx context.Context, ln net.Listener) `json:"-"`
	// Forwards are the only addresses a NetworkForward box reaches.
	Forwards []Forward `json:",omitempty"`
	// Dial connects a forwarded connection on the host; nil means a
	// net.Dialer with a 10 s timeout.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error) `json:"-"`
	// Resources bounds the box's cgroup (zero fields: the sandbox
	// defaults). AllowUnlimited starts it without a cgroup when none can
	// be created.
	Resources sandbox.Resources
	// TmpBytes sizes the private /tmp; zero means 64 MiB.
	TmpBytes int64
}

// Forward is one TCP address a NetworkForward box may reach: a host name
// or an IP literal, and a port.
type Forward struct {
	Host string
	Port int
}

func (f Forward) String() string { return net.JoinHostPort(f.Host, strconv.Itoa(f.Port)) }

// Box launches plugin processes confined. Its zero value is not usable.
type Box struct {
	// Launcher is an executable whose main calls MaybeInit first (the
	// nemoclave binary, or a test binary's TestMain); it is re-executed as
	// the box's init stage.
	Launcher string
	// RootDir is an empty directory the init stage mounts the box's root
	// on (inside its own mount namespace, so one directory serves every
	// box and stays empty on the host).
	RootDir string
	// CgroupParent is where box cgroups go (see confine.NewCgroup): empty
	// means "nemoclave" below the launcher's own cgroup.
	CgroupParent string
}

// FileID is one version of a file: device, inode, size, and modification
// and change times in nanoseconds.
type FileID struct {
	Dev, Ino           uint64
	Size, Mtime, Ctime int64
}

// IdentityOf is st's FileID.
func IdentityOf(st *unix.Stat_t) FileID {
	return FileID{Dev: st.Dev, Ino: st.Ino, Size: st.Size, Mtime: unix.TimespecToNsec(st.Mtim), Ctime: unix.TimespecToNsec(st.Ctim)}
}

// config travels from the host to the init stage over fd 3.
type config struct {
	Profile
	SocketDir string   `json:"socket_dir"`
	RootDir   string   `json:"root_dir"`
	Argv      []string `json:"argv"`
	Env       []string `json:"env"`
	UserNS    bool     `json:"userns"`
	// hosts is the box's /etc/hosts (NetworkForward), made by the init
	// stage.
	hosts string
}

const (
	initEnvVar = "_NEMOCLAVE_PLUGIN_BOX"
	cfgFD      = 3
	binFD      = 4
	// proxyFD is the init stage's end of a socket pair over which it sends
	// the host its proxy listener (NetworkProxy only).
	proxyFD = 5
	// exitSetupFailed is the init stage's exit code when it could not
	// build the box; its reason is on stderr, which the host logs.
	exitSetupFailed = 125
)

// check refuses a profile the box could not enforce.
func (p *Profile) check() error {
	var errs []error
	if p.Name == "" {
		errs = append(errs, errors.New("no name"))
	}
	if !filepath.IsAbs(p.Binary) {
		errs = append(errs, fmt.Errorf("binary %q is not an absolute path", p.Binary))
	}
	if len(p.SHA256) != 32 {
		errs = append(errs, fmt.Errorf("binary %s has no sha256: a confined plugin is always verified", p.Binary))
	}
	for _, list := range [][]string{p.ReadOnly, p.ReadWrite} {
		for _, path := range list {
			if !filepath.IsAbs(path) || filepath.Clean(path) == "/" {
				errs = append(errs, fmt.Errorf("path %q: give an absolute path below /", path))
			} else if _, err := os.Stat(path); err != nil {
				errs = append(errs, fmt.Errorf("path %s: %w (create it, or drop it from the plugin's config)", path, err))
			}
		}
	}
	if p.Network != NetworkHost && len(p.Ports) > 0 {
		errs = append(errs, fmt.Errorf("ports given to a plugin with network %s (only the host network takes ports)", p.Network))
	}
	if p.Network == NetworkProxy && p.Egress == nil {
		errs = append(errs, errors.New("network proxy without an egress server for it"))
	}
	if p.Network == NetworkForward && len(p.Forwards) == 0 {
		errs = append(errs, errors.New("network forward without an address to forward"))
	}
	if p.Network != NetworkForward && len(p.Forwards) > 0 {
		errs = append(errs, fmt.Errorf("forwards given to a plugin with network %s", p.Network))
	}
	for _, f := range p.Forwards {
		if err := checkForward(f); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// command prepares cmd (argv and env as go-plugin built them) to start the
// init stage in new namespaces. The returned pipe end receives the config
// once the process is in its cgroup; the binary file is handed over as an
// open descriptor. With NetworkProxy, proxyHost is the host's end of the
// socket pair the proxy listener arrives on.
func (b *Box) command(cmd *exec.Cmd, socketDir string, p Profile) (cfgW *os.File, cfgBuf []byte, proxyHost *os.File, err error) {
	cfgW, cfgBuf, err = b.command1(cmd, socketDir, p)
	if err != nil || p.Network != NetworkProxy && p.Network != NetworkForward {
		return cfgW, cfgBuf, nil, err
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		closeFiles(cmd)
		cfgW.Close()
		return nil, nil, nil, fmt.Errorf("plugin %s: proxy socket pair: %w", p.Name, err)
	}
	cmd.ExtraFiles = append(cmd.ExtraFiles, os.NewFile(uintptr(fds[1]), "proxy"))
	return cfgW, cfgBuf, os.NewFile(uintptr(fds[0]), "proxy-host"), nil
}

func (b *Box) command1(cmd *exec.Cmd, socketDir string, p Profile) (cfgW *os.File, cfgBuf []byte, err error) {
	if err := p.check(); err != nil {
		return nil, nil, fmt.Errorf("plugin %s cannot be confined: %w", p.Name, err)
	}
	if b.Launcher == "" || b.RootDir == "" {
		return nil, nil, errors.New("plugin box: no launcher or root dir configured")
	}
	argv := append([]string{p.Binary}, cmd.Args[1:]...)
	bin, err := os.Open(p.Binary)
	if err != nil {
		return nil, nil, fmt.Errorf("plugin %s: %w", p.Name, err)
	}
	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		bin.Close()
		return nil, nil, err
	}
	userns := os.Geteuid() != 0
	c := config{Profile: p, SocketDir: socketDir, RootDir: b.RootDir, Argv: argv, Env: cmd.Env, UserNS: userns}
	// The whole config must fit the pipe buffer: the host writes it before
	// the init stage reads, and must never block on it.
	buf, err := json.Marshal(c)
	if err == nil && len(buf) >= 60000 {
		err = fmt.Errorf("plugin %s: its box config is %d bytes; too many paths", p.Name, len(buf))
	}
	if err != nil {
		bin.Close()
		cfgR.Close()
		cfgW.Close()
		return nil, nil, err
	}

	cmd.Path = b.Launcher
	cmd.Args = []string{"nemoclave-plugin-box", p.Name}
	// Only the marker: the plugin's own environment travels in the config,
	// so nothing reaches the plugin that its profile does not hold.
	cmd.Env = []string{initEnvVar + "=1"}
	cmd.ExtraFiles = []*os.File{cfgR, bin}
	flags := uintptr(unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWIPC | unix.CLONE_NEWUTS | unix.CLONE_NEWCGROUP)
	if p.Network != NetworkHost {
		flags |= unix.CLONE_NEWNET
	}
	attr := &syscall.SysProcAttr{Cloneflags: flags, Pdeathsig: syscall.SIGKILL}
	if userns {
		// Unprivileged: the box is root of its own user namespace, mapped
		// to the launcher's uid and gid, with nothing else mapped.
		attr.Cloneflags |= unix.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
		attr.GidMappingsEnableSetgroups = false
	}
	cmd.SysProcAttr = attr
	return cfgW, buf, nil
}

// closeFiles closes the descriptors command handed to the child.
func closeFiles(cmd *exec.Cmd) {
	for _, f := range cmd.ExtraFiles {
		_ = f.Close()
	}
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// under reports whether p is dir or below it.
func under(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}
