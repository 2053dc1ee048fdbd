package confine

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nemoclave/nemoclave/sandbox"
)

// Cgroups: a sandbox gets one cgroup per hierarchy that carries the memory,
// pids and cpu controllers. On pure cgroup v2 that is one directory; on a
// v1 or hybrid host (v1 controllers plus a controller-less v2 mount) it is
// one directory per v1 controller. By default the sandbox cgroups live under
// "nemoclave" below the supervisor's own cgroup in each hierarchy, so the
// supervisor never writes outside the subtree it was given; Config.CgroupParent
// names a delegated cgroup instead (needed for unprivileged supervisors).

// Defaults applied when a sandbox.Resources field is zero.
const (
	DefaultMemoryBytes = 2 << 30
	DefaultPids        = 1024
	DefaultCPUs        = 1.0
)

var cgroupControllers = []string{"memory", "pids", "cpu"}

// Cgroup is the persisted form: the directories to kill and remove.
type Cgroup struct {
	// Dirs are absolute cgroupfs directories, one per hierarchy.
	Dirs []string `json:"dirs,omitempty"`
	// V2 marks Dirs[0] as a cgroup v2 directory (cgroup.kill, memory.max).
	V2 bool `json:"v2,omitempty"`
}

type CgroupLayout struct {
	v2Mount string            // pure v2 mount point, "" on v1/hybrid
	v1      map[string]string // controller → mount point
	self    map[string]string // hierarchy key ("" for v2, controller for v1) → own path
}

func DetectCgroups() (*CgroupLayout, error) {
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	cg, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("read /proc/self/cgroup: %w", err)
	}
	return parseCgroupLayout(string(mi), string(cg)), nil
}

// parseCgroupLayout reads the cgroup mounts from mountinfo and this
// process's place in each hierarchy from /proc/self/cgroup.
func parseCgroupLayout(mountinfo, self string) *CgroupLayout {
	l := &CgroupLayout{v1: map[string]string{}, self: map[string]string{}}
	sc := bufio.NewScanner(strings.NewReader(mountinfo))
	for sc.Scan() {
		// id parent maj:min root mountpoint opts [optional...] - fstype source superopts
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		f, p := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(p) < 3 {
			continue
		}
		switch p[0] {
		case "cgroup2":
			if f[4] == "/sys/fs/cgroup" {
				l.v2Mount = f[4]
			}
		case "cgroup":
			for _, opt := range strings.Split(p[2], ",") {
				if slices.Contains(cgroupControllers, opt) {
					l.v1[opt] = f[4]
				}
			}
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(self), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			l.self[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			l.self[c] = parts[2]
		}
	}
	return l
}

// NewCgroup creates the sandbox's cgroups and writes its limits. It fails
// closed: an error here means the sandbox must not start, unless the caller
// set Resources.AllowUnlimited (then the error is returned wrapped by CgroupErr
// and the driver runs the sandbox without cgroup limits).
func NewCgroup(parent, name string, res sandbox.Resources) (*Cgroup, error) {
	l, err := DetectCgroups()
	if err != nil {
		return nil, err
	}
	mem, pids, cpus := res.MemoryBytes, res.Pids, res.CPUs
	if mem == 0 {
		mem = DefaultMemoryBytes
	}
	if pids == 0 {
		pids = DefaultPids
	}
	if cpus == 0 {
		cpus = DefaultCPUs
	}
	quota := int64(cpus * 100000)
	if quota < 1000 {
		quota = 1000
	}
	if parent == "" {
		parent = "nemoclave"
	}
	dirFor := func(mount, self string) string {
		if filepath.IsAbs(parent) {
			return filepath.Join(mount, parent, name)
		}
		return filepath.Join(mount, self, parent, name)
	}

	if l.v2Mount != "" && l.self[""] != "" {
		dir := dirFor(l.v2Mount, l.self[""])
		rec := &Cgroup{Dirs: []string{dir}, V2: true}
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return nil, CgroupErr(err)
		}
		// Controllers must be enabled in every ancestor's subtree_control;
		// a cgroup that holds processes (our own) refuses that, which is why
		// a delegated, empty CgroupParent exists.
		for _, d := range []string{filepath.Dir(filepath.Dir(dir)), filepath.Dir(dir)} {
			_ = os.WriteFile(filepath.Join(d, "cgroup.subtree_control"), []byte("+memory +pids +cpu"), 0)
		}
		if err := mkdirCgroup(dir); err != nil {
			return nil, CgroupErr(err)
		}
		have, _ := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
		for _, c := range cgroupControllers {
			if !slices.Contains(strings.Fields(string(have)), c) {
				_ = os.Remove(dir)
				return nil, CgroupErr(fmt.Errorf("controller %s is not delegated to %s", c, filepath.Dir(dir)))
			}
		}
		writes := [][2]string{
			{"memory.max", strconv.FormatInt(mem, 10)},
			{"memory.swap.max", "0"},
			{"pids.max", strconv.FormatInt(pids, 10)},
			{"cpu.max", fmt.Sprintf("%d 100000", quota)},
		}
		for _, w := range writes {
			if err := os.WriteFile(filepath.Join(dir, w[0]), []byte(w[1]), 0); err != nil {
				if w[0] == "memory.swap.max" && errors.Is(err, os.ErrNotExist) {
					continue // no swap accounting: nothing to limit
				}
				_ = rec.Remove()
				return nil, CgroupErr(fmt.Errorf("set %s: %w", w[0], err))
			}
		}
		return rec, nil
	}

	rec := &Cgroup{}
	for _, c := range cgroupControllers {
		mount, ok := l.v1[c]
		if !ok {
			return nil, CgroupErr(fmt.Errorf("no cgroup v1 %s hierarchy and no cgroup v2 at /sys/fs/cgroup", c))
		}
		dir := dirFor(mount, l.self[c])
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			_ = rec.Remove()
			return nil, CgroupErr(err)
		}
		if err := mkdirCgroup(dir); err != nil {
			_ = rec.Remove()
			return nil, CgroupErr(err)
		}
		rec.Dirs = append(rec.Dirs, dir)
		var writes [][2]string
		switch c {
		case "memory":
			writes = [][2]string{{"memory.limit_in_bytes", strconv.FormatInt(mem, 10)}, {"memory.memsw.limit_in_bytes", strconv.FormatInt(mem, 10)}}
		case "pids":
			writes = [][2]string{{"pids.max", strconv.FormatInt(pids, 10)}}
		case "cpu":
			writes = [][2]string{{"cpu.cfs_period_us", "100000"}, {"cpu.cfs_quota_us", strconv.FormatInt(quota, 10)}}
		}
		for _, w := range writes {
			if err := os.WriteFile(filepath.Join(dir, w[0]), []byte(w[1]), 0); err != nil {
				if w[0] == "memory.memsw.limit_in_bytes" && errors.Is(err, os.ErrNotExist) {
					continue // swap accounting off: memory.limit_in_bytes already bounds RAM
				}
				_ = rec.Remove()
				return nil, CgroupErr(fmt.Errorf("set %s: %w", w[0], err))
			}
		}
	}
	return rec, nil
}

// mkdirCgroup creates a sandbox's own cgroup. It must be new: sharing one
// would let one sandbox's Delete kill another's processes. An empty
// leftover from a crashed supervisor is removed and replaced.
func mkdirCgroup(dir string) error {
	err := os.Mkdir(dir, 0o755)
	if errors.Is(err, os.ErrExist) {
		if rerr := unix.Rmdir(dir); rerr != nil {
			return fmt.Errorf("cgroup %s already exists and is in use (%v); another sandbox has it", dir, rerr)
		}
		err = os.Mkdir(dir, 0o755)
	}
	return err
}

var errNoCgroup = errors.New("cgroup limits cannot be applied")

func CgroupErr(err error) error {
	return fmt.Errorf("%w: %w; as an ordinary user, have root run `nemoclave setup --user %s` once (it delegates cgroups to you), or run the daemon as root; "+
		"a blueprint may instead opt out with `allow_unlimited = true` in the sandbox's resources block, which runs the sandbox without memory, CPU and process limits (weaker)", errNoCgroup, err, currentUserName())
}

// place moves pid into every hierarchy of the sandbox.
func (r *Cgroup) Place(pid int) error {
	for _, d := range r.Dirs {
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
			return CgroupErr(fmt.Errorf("move init into %s: %w", d, err))
		}
	}
	return nil
}

// kill SIGKILLs every process left in the sandbox's cgroups. The pid
// namespace already dies with its init; this catches anything that escaped
// it (it cannot, but the cgroup is the authority on what the sandbox owns).
func (r *Cgroup) Kill() {
	if r == nil {
		return
	}
	for _, d := range r.Dirs {
		if r.V2 {
			_ = os.WriteFile(filepath.Join(d, "cgroup.kill"), []byte("1"), 0)
		}
		for range 50 {
			b, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
			if err != nil || len(strings.TrimSpace(string(b))) == 0 {
				break
			}
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil {
					_ = unix.Kill(pid, unix.SIGKILL)
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
}

// remove kills what is left and removes the directories.
func (r *Cgroup) Remove() error {
	if r == nil {
		return nil
	}
	r.Kill()
	var errs []error
	for _, d := range r.Dirs {
		var err error
		for range 100 {
			err = unix.Rmdir(d)
			if err == nil || errors.Is(err, unix.ENOENT) {
				err = nil
				break
			}
			time.Sleep(5 * time.Millisecond) // exiting tasks leave the cgroup asynchronously
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}

// SelfDirs maps each hierarchy that carries the controllers ("" for cgroup
// v2, the controller's name for v1) to the absolute directory of the
// calling process's own cgroup in it.
func (l *CgroupLayout) SelfDirs() map[string]string {
	out := map[string]string{}
	if l.v2Mount != "" {
		out[""] = filepath.Join(l.v2Mount, l.self[""])
	}
	for c, m := range l.v1 {
		out[c] = filepath.Join(m, l.self[c])
	}
	return out
}

// currentUserName names the supervisor's user for error messages.
func currentUserName() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "$USER"
}
