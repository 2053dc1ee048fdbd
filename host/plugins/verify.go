package plugins

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/nemoclave/nemoclave/sandbox/pluginbox"
)

// Verification without re-hashing at every launch.
//
// Every launch used to re-hash the plugin binary (25 MB, ~20 ms of CPU).
// Now a file's hash is remembered by its identity: device, inode, size,
// mtime and ctime. Any write, truncate, chmod or rename of the file
// changes ctime, which userspace cannot set back, so an unchanged identity
// means unchanged content. Two details keep this sound:
//
//   - a file whose ctime is within identityQuiet of now is hashed but not
//     remembered: timestamps are coarse (one kernel tick), so a write in
//     the same tick as the previous one might not move ctime;
//   - the launch executes the very inode it verified, through an open file
//     descriptor (/proc/self/fd/N), so swapping the path (rename) after the
//     check cannot substitute another binary; and after the handshake the
//     descriptor is checked again, so an in-place write between the check
//     and exec is caught (and the plugin killed) rather than trusted. Once
//     a binary runs, the kernel refuses writes to it (ETXTBSY).
//
// Directory plugins (scripts with sibling modules) cannot run from a
// descriptor: they are verified file by file before launch and their entry
// point's identity is re-checked after the handshake.

// identityQuiet is how old a file's ctime must be before its hash is
// remembered by identity.
const identityQuiet = 2 * time.Second

// fileID identifies one version of a file.
type fileID struct {
	dev, ino           uint64
	size, mtime, ctime int64
}

func identity(st *syscall.Stat_t) fileID {
	return fileID{dev: st.Dev, ino: st.Ino, size: st.Size, mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano()}
}

// hashes remembers sha256 by fileID for the life of the process (the
// daemon): a warm run verifies each plugin with one fstat.
var hashes sync.Map // fileID -> []byte

// hashFD returns the sha256 of the open file f, from the identity cache
// when it can.
func hashFD(f *os.File) ([]byte, fileID, error) {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return nil, fileID{}, fmt.Errorf("hash plugin %s: %w", f.Name(), err)
	}
	id := identity(&st)
	if sum, ok := hashes.Load(id); ok {
		return sum.([]byte), id, nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, st.Size)); err != nil {
		return nil, id, fmt.Errorf("hash plugin %s: %w", f.Name(), err)
	}
	sum := h.Sum(nil)
	if time.Since(time.Unix(0, id.ctime)) > identityQuiet {
		hashes.Store(id, sum)
	}
	return sum, id, nil
}

func hashFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("hash plugin %s: %w", path, err)
	}
	defer f.Close()
	sum, _, err := hashFD(f)
	return sum, err
}

// fileHash is the lock-file form of a single file's sha256.
func fileHash(sum []byte) string { return "sha256:" + hex.EncodeToString(sum) }

// treeHash is the lock-file form of a directory plugin: the sha256 of one
// line per regular file, sorted by path: "<sha256 hex>  <mode>  <path>\n"
// (mode is x when executable, - otherwise). Symlinks and special files are
// refused: a plugin tree must be self-contained.
func treeHash(root string) (string, error) {
	type entry struct{ rel, line string }
	var lines []entry
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s is not a regular file (symlinks and devices are not allowed in a plugin directory)", rel)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		sum, err := hashFile(p)
		if err != nil {
			return err
		}
		mode := "-"
		if info.Mode().Perm()&0o111 != 0 {
			mode = "x"
		}
		lines = append(lines, entry{rel, hex.EncodeToString(sum) + "  " + mode + "  " + filepath.ToSlash(rel) + "\n"})
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("hash plugin directory %s: %w", root, err)
	}
	sort.Slice(lines, func(i, j int) bool { return lines[i].rel < lines[j].rel })
	h := sha256.New()
	for _, l := range lines {
		io.WriteString(h, l.line)
	}
	return "h1:" + hex.EncodeToString(h.Sum(nil)), nil
}

// verified is a plugin checked against its trusted hash and held open.
type verified struct {
	// file is the executable, open; nil for directory plugins.
	file *os.File
	id   fileID
	// path is what to execute by path (directory plugins).
	path string
}

// verify checks b against its trusted hash before launch.
func (m *Manager) verify(b *Binary) (*verified, error) {
	if b.Root != "" {
		got, err := treeHash(b.Root)
		if err != nil {
			return nil, err
		}
		if got != b.Hash {
			return nil, m.mismatch(b, got)
		}
		var st syscall.Stat_t
		if err := syscall.Stat(b.Path, &st); err != nil {
			return nil, err
		}
		return &verified{path: b.Path, id: identity(&st)}, nil
	}
	f, err := os.Open(b.Path)
	if err != nil {
		return nil, fmt.Errorf("plugin binary %s: %w (build it with `make plugins` or install it with `nemoclave plugin install`)", b.Path, err)
	}
	sum, id, err := hashFD(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	if !bytes.Equal(sum, b.SHA256) {
		f.Close()
		return nil, m.mismatch(b, fileHash(sum))
	}
	return &verified{file: f, id: id}, nil
}

// settledID returns the identity of the verified binary when its hash is
// kept by that identity (it was settled when hashed and matched the trusted
// hash): the identity then stands for the content, and a plugin box can
// check it with one fstat instead of hashing the file again.
func (v *verified) settledID() (pluginbox.FileID, bool) {
	if v == nil || v.file == nil {
		return pluginbox.FileID{}, false
	}
	if _, ok := hashes.Load(v.id); !ok {
		return pluginbox.FileID{}, false
	}
	return pluginbox.FileID{Dev: v.id.dev, Ino: v.id.ino, Size: v.id.size, Mtime: v.id.mtime, Ctime: v.id.ctime}, true
}

// recheck runs after the handshake: the executed file must still be the
// one verified.
func (v *verified) recheck() error {
	var st syscall.Stat_t
	var err error
	if v.file != nil {
		err = syscall.Fstat(int(v.file.Fd()), &st)
	} else {
		err = syscall.Stat(v.path, &st)
	}
	if err != nil {
		return err
	}
	if identity(&st) != v.id {
		return fmt.Errorf("the plugin file was modified while it was being launched")
	}
	return nil
}

func (v *verified) close() {
	if v.file != nil {
		v.file.Close()
	}
}

// mismatch explains a checksum refusal by origin.
func (m *Manager) mismatch(b *Binary, got string) error {
	var fix string
	switch b.Origin {
	case OriginInstalled:
		fix = fmt.Sprintf("it no longer matches the hash recorded in %s at install (%s, now %s); if you replaced it on purpose, reinstall it with `nemoclave plugin install %s --path <binary> --version %s`",
			filepath.Join(m.pluginsDir(), LockFileName), b.Hash, got, b.Address, b.Version)
	default:
		fix = fmt.Sprintf("the file changed after nemoclave hashed it (%s, now %s); refusing to run it. Retry once the binary is no longer being rebuilt or replaced", b.Hash, got)
	}
	return fmt.Errorf("plugin %s (%s) refused: checksum mismatch: %s", b.Source, b.Path, fix)
}

// isELF reports whether f starts with the ELF magic: only binaries can be
// executed from a descriptor (a script's interpreter would open the
// descriptor path after it was closed).
func isELF(f *os.File) bool {
	var magic [4]byte
	n, _ := f.ReadAt(magic[:], 0)
	return n == 4 && string(magic[:]) == "\x7fELF"
}
