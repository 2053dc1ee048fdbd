package local

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nemoclave/nemoclave/sandbox/confine"
)

// Protected workspace paths (policy.Filesystem.EffectiveProtected: the
// policy's list plus the workspace .git, see F17 in docs/sandbox.md) stay
// read-only even though the workspace is writable:
//
//   - the supervisor creates a placeholder for each one that does not exist
//     yet (and for its missing ancestors), so it cannot be created later
//     (F7);
//   - the init stage binds every ancestor inside the workspace onto itself,
//     making it a mount point that cannot be renamed or removed (F6), then
//     binds the protected path onto itself read-only (F3).
//
// The workspace belongs to the agent, and another sandbox may share it, so
// every path is resolved component by component with openat2
// RESOLVE_NO_SYMLINKS|RESOLVE_BENEATH: a symlink planted anywhere on the way
// is refused rather than followed out of the workspace.

// placeholderDirs are protected paths that git expects to be directories
// when they exist: their placeholder is an empty directory, not a file. An
// empty .git directory is not a repository to git (no HEAD), so a host
// git in or above the workspace behaves as before; a .git file would make
// git fail with "invalid gitfile format".
var placeholderDirs = map[string]bool{".git": true, ".git/hooks": true, ".git/info": true, ".git/modules": true, ".git/worktrees": true}

// placeholderBody is what a file placeholder holds when git cannot read an
// empty one: a commondir of "." names the repository itself.
var placeholderBody = map[string]string{".git/commondir": ".\n"}

// gitFileAware narrows protected paths below .git to .git itself when the
// workspace's .git is a file (a linked worktree or a submodule checkout):
// the repository then lives outside the workspace, and what the agent
// could change is where the file points. Otherwise it adds the workspace's
// submodules (gitlinks.go).
func gitFileAware(ws string, protected []string) []string {
	st, err := os.Lstat(filepath.Join(ws, ".git"))
	if err != nil || st.IsDir() {
		return withSubmodules(ws, protected)
	}
	out := make([]string, 0, len(protected))
	seen := false
	for _, p := range protected {
		if p == ".git" || strings.HasPrefix(p, ".git/") {
			if !seen {
				out, seen = append(out, ".git"), true
			}
			continue
		}
		out = append(out, p)
	}
	return out
}

const beneath = unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS

func openBeneath(dirfd int, rel string, flags uint64, mode uint64) (int, error) {
	for {
		fd, err := unix.Openat2(dirfd, rel, &unix.OpenHow{Flags: flags | unix.O_CLOEXEC, Mode: mode, Resolve: beneath})
		if !errors.Is(err, unix.EINTR) && !errors.Is(err, unix.EAGAIN) {
			return fd, err
		}
	}
}

func symlinkErr(rel string, err error) error {
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EXDEV) || errors.Is(err, unix.ENOTDIR) {
		return fmt.Errorf("protected path %s: a symlink or non-directory is in the way (%w); a protected path must be a real file or directory in the workspace — remove the link", rel, err)
	}
	return fmt.Errorf("protected path %s: %w", rel, err)
}

// makePlaceholders runs in the supervisor before start. It returns the host
// paths it created, deepest last, for Delete to remove while still empty.
func makePlaceholders(ws string, protected []string) ([]string, error) {
	root, err := unix.Open(ws, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open workspace: %w", err)
	}
	defer unix.Close(root)
	return makePlaceholdersAt(root, ws, protected)
}

// makePlaceholdersAt makes the placeholders below the directory root; ws
// (the host path of root) only names what was made.
func makePlaceholdersAt(root int, ws string, protected []string) ([]string, error) {
	var made []string
	for _, rel := range protected {
		parts := strings.Split(rel, "/")
		for i := 1; i < len(parts); i++ {
			anc := strings.Join(parts[:i], "/")
			fd, err := openBeneath(root, anc, unix.O_PATH|unix.O_DIRECTORY, 0)
			if errors.Is(err, unix.ENOENT) {
				if err := unix.Mkdirat(root, anc, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
					return made, symlinkErr(rel, err)
				}
				made = append(made, filepath.Join(ws, anc))
				fd, err = openBeneath(root, anc, unix.O_PATH|unix.O_DIRECTORY, 0)
			}
			if err != nil {
				return made, symlinkErr(rel, err)
			}
			unix.Close(fd)
		}
		exists, err := existingProtected(root, rel)
		if err != nil {
			return made, err
		}
		if exists {
			continue
		}
		if placeholderDirs[rel] || strings.HasSuffix(rel, "/.git") {
			if err := unix.Mkdirat(root, rel, 0o755); err != nil {
				// Another sandbox starting on this workspace made it
				// between our check and now: theirs serves, if it is
				// not a link.
				if errors.Is(err, unix.EEXIST) {
					if _, err := existingProtected(root, rel); err != nil {
						return made, err
					}
					continue
				}
				return made, symlinkErr(rel, err)
			}
			made = append(made, filepath.Join(ws, rel))
			continue
		}
		fd, err := openBeneath(root, rel, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW, 0o444)
		if errors.Is(err, unix.EEXIST) {
			if _, err := existingProtected(root, rel); err != nil {
				return made, err
			}
			continue
		}
		if err != nil {
			return made, symlinkErr(rel, err)
		}
		made = append(made, filepath.Join(ws, rel))
		if body := placeholderBody[rel]; body != "" {
			if _, err := unix.Write(fd, []byte(body)); err != nil {
				unix.Close(fd)
				return made, fmt.Errorf("protected path %s: %w", rel, err)
			}
		}
		unix.Close(fd)
	}
	return made, nil
}

// existingProtected reports whether rel exists below root as something
// other than a symlink; a symlink is an error.
func existingProtected(root int, rel string) (bool, error) {
	fd, err := openBeneath(root, rel, unix.O_PATH|unix.O_NOFOLLOW, 0)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, symlinkErr(rel, err)
	}
	var st unix.Stat_t
	serr := unix.Fstat(fd, &st)
	unix.Close(fd)
	if serr == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return false, symlinkErr(rel, unix.ELOOP)
	}
	return true, nil
}

// protectPaths runs in the init stage on the freshly bound workspace at ws.
func protectPaths(ws string, protected []string) error {
	root, err := unix.Open(ws, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open workspace mount: %w", err)
	}
	defer unix.Close(root)
	pinned := map[string]bool{}
	for _, rel := range protected {
		parts := strings.Split(rel, "/")
		for i := 1; i < len(parts); i++ {
			anc := strings.Join(parts[:i], "/")
			if pinned[anc] {
				continue
			}
			pinned[anc] = true
			err := bindOnto(root, anc, 0)
			if errors.Is(err, unix.ENOENT) {
				// Another sandbox on this workspace removed its placeholder
				// after ours was planned: make it again rather than leave
				// the path creatable.
				if merr := unix.Mkdirat(root, anc, 0o755); merr == nil || errors.Is(merr, unix.EEXIST) {
					err = bindOnto(root, anc, 0)
				}
			}
			if err != nil {
				return fmt.Errorf("pin %s: %w", anc, err)
			}
		}
	}
	for _, rel := range protected {
		err := bindOnto(root, rel, confine.ROAttrs)
		if errors.Is(err, unix.ENOENT) {
			if _, perr := makePlaceholdersAt(root, "", []string{rel}); perr == nil {
				err = bindOnto(root, rel, confine.ROAttrs)
			}
		}
		if err != nil {
			return fmt.Errorf("protect %s: %w", rel, err)
		}
	}
	return nil
}

// removePlaceholders removes what makePlaceholders made for a deleted
// sandbox, unless another sandbox of this driver uses the same workspace:
// removing a directory that is a mount point in that sandbox's namespace
// would silently drop its protection there.
func (d *Driver) removePlaceholders(name string, r *record) {
	if len(r.Placeholders) == 0 {
		return
	}
	ents, _ := os.ReadDir(d.cfg.StateRoot)
	for _, e := range ents {
		if e.Name() == name || !e.IsDir() {
			continue
		}
		if o, err := d.load(e.Name()); err == nil && o.Spec.Workspace == r.Spec.Workspace {
			return
		}
	}
	for i := len(r.Placeholders) - 1; i >= 0; i-- {
		_ = os.Remove(r.Placeholders[i]) // only succeeds while still empty
	}
}

// bindOnto binds root/rel onto itself with attrs, resolving rel beneath
// root without following any symlink.
func bindOnto(root int, rel string, attrs uint64) error {
	fd, err := openBeneath(root, rel, unix.O_PATH|unix.O_NOFOLLOW, 0)
	if err != nil {
		return symlinkErr(rel, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return symlinkErr(rel, unix.ELOOP)
	}
	tree, err := unix.OpenTree(fd, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE|unix.AT_EMPTY_PATH)
	if err != nil {
		return fmt.Errorf("clone: %w", err)
	}
	defer unix.Close(tree)
	if attrs != 0 {
		if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &unix.MountAttr{Attr_set: attrs}); err != nil {
			return fmt.Errorf("set attributes: %w", err)
		}
	}
	if err := unix.MoveMount(tree, "", fd, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("attach: %w", err)
	}
	return nil
}
