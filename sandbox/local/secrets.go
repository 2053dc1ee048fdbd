package local

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/nemoclave/nemoclave/policy"
	"github.com/nemoclave/nemoclave/sandbox"
	"github.com/nemoclave/nemoclave/sandbox/confine"
)

// A policy may grant a directory that holds credentials without meaning to
// (a home directory, a shared volume). Below every path the policy mounts,
// the well-known credential stores — at the top and one level down, which
// covers /home/<user>/… — are covered by an unopenable inode or an empty
// mode-0000 directory, so F1 holds even for a generous policy. Symlinks are
// not followed (RESOLVE_NO_SYMLINKS): a link resolves inside the sandbox
// view, where its target is masked or absent in its own right.

var secretDirs = []string{".ssh", ".aws", ".gnupg", ".kube", ".docker", ".azure", ".nemoclave", ".password-store", ".config/gcloud", ".config/gh"}
var secretFiles = []string{".netrc", ".git-credentials", ".pgpass", ".npmrc", ".pypirc", ".vault-token", ".boto"}

// maxSecretScan bounds the one-level-down scan of a huge directory.
const maxSecretScan = 512

// maskDir is the empty, unopenable directory bound over masked directories.
const maskDir = "/.masked.d"

func maskSecretsUnder(root, dir string) error {
	dfd, err := unix.Open(filepath.Join(root, dir), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil // not a directory (a file rule) or absent: nothing below it
	}
	defer unix.Close(dfd)
	prefixes := []string{""}
	if ents, err := os.ReadDir(filepath.Join(root, dir)); err == nil {
		for i, e := range ents {
			if i == maxSecretScan {
				break
			}
			if e.IsDir() {
				prefixes = append(prefixes, e.Name()+"/")
			}
		}
	}
	for _, pre := range prefixes {
		for _, d := range secretDirs {
			if err := maskBeneath(root, dfd, pre+d, true); err != nil {
				return fmt.Errorf("mask %s: %w", filepath.Join(dir, pre+d), err)
			}
		}
		for _, f := range secretFiles {
			if err := maskBeneath(root, dfd, pre+f, false); err != nil {
				return fmt.Errorf("mask %s: %w", filepath.Join(dir, pre+f), err)
			}
		}
	}
	return nil
}

// maskBeneath covers dfd/rel with the matching mask if it exists and is of
// the expected kind.
func maskBeneath(root string, dfd int, rel string, wantDir bool) error {
	fd, err := openBeneath(dfd, rel, unix.O_PATH|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil // absent, or reached through a symlink: nothing to mask here
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
	if isDir != wantDir || (!isDir && st.Mode&unix.S_IFMT != unix.S_IFREG) {
		return nil
	}
	src := filepath.Join(root, confine.MaskFile)
	if isDir {
		src = filepath.Join(root, maskDir)
	}
	tree, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return err
	}
	defer unix.Close(tree)
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: confine.ROAttrs | unix.MOUNT_ATTR_NOEXEC}); err != nil {
		return err
	}
	return unix.MoveMount(tree, "", fd, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH)
}

// hostSocketDirs hold the host's daemon sockets (docker, containerd,
// systemd, dbus). Connecting to a unix socket is not a write, so a
// read-only grant would hand them to the agent; a policy naming them is
// refused.
var hostSocketDirs = []string{"/run", "/var/run"}

func checkPolicyPath(p string) error {
	c := filepath.Clean(p)
	for _, d := range hostSocketDirs {
		if c == d || len(c) > len(d) && c[:len(d)+1] == d+"/" {
			return fmt.Errorf("filesystem path %s is under %s, which holds the host's daemon sockets (docker, containerd, dbus); granting it would let the agent drive them — remove it from the policy", p, d)
		}
	}
	return nil
}

// checkDaemonPaths refuses a policy that would mount the daemon's home or
// this driver's state root (agent logs, other sandboxes' roots) into the
// sandbox, read-only or not, directly or through a parent (F19). The
// credential masks below cover stores with well-known names; the daemon's
// home can be anywhere, so it is refused by its real path instead.
//
// The workspace may live below the home (the default
// $NEMOCLAVE_HOME/workspaces/<name>) but may not be the home or contain it.
func (d *Driver) checkDaemonPaths(spec *sandbox.Spec) error {
	for _, hidden := range []string{d.cfg.DaemonHome, d.cfg.StateRoot} {
		if hidden == "" {
			continue
		}
		if err := spec.Policy.Filesystem.CheckHidden(hidden); err != nil {
			return err
		}
		if policy.Contains(spec.Workspace, hidden) {
			return fmt.Errorf("workspace %s contains %s, the nemoclave home or sandbox state (daemon socket, credentials.json, state): the agent could read the credentials or drive the daemon — use a workspace directory that does not contain it", spec.Workspace, hidden)
		}
	}
	return nil
}
