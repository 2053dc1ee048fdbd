package confine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// Ordinary users: the driver needs a cgroup it may create sandbox cgroups
// in. `nemoclave setup --user NAME`, run once as root, creates one per
// hierarchy (one directory on pure cgroup v2; one per memory, pids and cpu
// controller on v1 and hybrid hosts) at UserCgroupParent and hands it to
// the user, as systemd's Delegate=yes does. The runtime of an unprivileged
// daemon uses it when it exists.

// userCgroupRoot holds the per-user delegated cgroups, below each
// hierarchy's root.
const userCgroupRoot = "/nemoclave-users"

// UserCgroupParent is the Config.CgroupParent that SetupUserCgroups
// delegates to uid.
func UserCgroupParent(uid int) string {
	return filepath.Join(userCgroupRoot, strconv.Itoa(uid))
}

// userCgroupDirs lists the delegated directories of uid, one per hierarchy.
func userCgroupDirs(uid int) ([]string, bool, error) {
	l, err := DetectCgroups()
	if err != nil {
		return nil, false, err
	}
	parent := UserCgroupParent(uid)
	if l.v2Mount != "" {
		return []string{filepath.Join(l.v2Mount, parent)}, true, nil
	}
	var dirs []string
	for _, c := range cgroupControllers {
		m, ok := l.v1[c]
		if !ok {
			return nil, false, fmt.Errorf("no cgroup v1 %s hierarchy and no cgroup v2 at /sys/fs/cgroup", c)
		}
		dirs = append(dirs, filepath.Join(m, parent))
	}
	return dirs, false, nil
}

// HasUserCgroup reports whether uid has the delegated cgroups that
// SetupUserCgroups creates, owned by it in every hierarchy.
func HasUserCgroup(uid int) bool {
	dirs, _, err := userCgroupDirs(uid)
	if err != nil || len(dirs) == 0 {
		return false
	}
	for _, d := range dirs {
		if err := unixAccessW(d); err != nil {
			return false
		}
	}
	return true
}

// SetupUserCgroups creates and delegates uid's cgroups (run as root). It
// is idempotent and returns the directories.
func SetupUserCgroups(uid, gid int) ([]string, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("creating cgroups for another user needs root: run `sudo nemoclave setup --user NAME`")
	}
	dirs, v2, err := userCgroupDirs(uid)
	if err != nil {
		return nil, err
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("create cgroup %s: %w", d, err)
		}
		if v2 {
			// The controllers must be enabled on the way down for the
			// user's sandbox cgroups to get them.
			for _, p := range []string{filepath.Dir(filepath.Dir(d)), filepath.Dir(d), d} {
				if err := os.WriteFile(filepath.Join(p, "cgroup.subtree_control"), []byte("+memory +pids +cpu"), 0); err != nil {
					return nil, fmt.Errorf("enable memory, pids and cpu in %s: %w", p, err)
				}
			}
		}
		// Delegation is ownership of the directory and of the files that
		// move processes and enable controllers (systemd's Delegate=yes).
		for _, f := range []string{"", "cgroup.procs", "tasks", "cgroup.subtree_control", "cgroup.threads"} {
			p := filepath.Join(d, f)
			if _, err := os.Stat(p); err != nil {
				continue
			}
			if err := os.Chown(p, uid, gid); err != nil {
				return nil, fmt.Errorf("delegate %s to uid %d: %w", p, uid, err)
			}
		}
	}
	return dirs, nil
}

func unixAccessW(p string) error {
	return unix.Access(p, unix.W_OK)
}
