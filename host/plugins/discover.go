package plugins

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
)

// BinaryPrefix starts the file name of every plugin binary, so builtins are
// recognisable among other files in the bin directory and in `ps`.
const BinaryPrefix = "nemoclave-plugin-"

// BuiltinPrefix starts the source of a builtin plugin: builtin/<kind>-<name>.
const BuiltinPrefix = "builtin/"

// Origin says where a binary was found, which decides where its trusted
// checksum comes from.
type Origin string

const (
	// OriginBuiltin: shipped beside nemoclave; hashed at discovery.
	OriginBuiltin Origin = "builtin"
	// OriginInstalled: in $NEMOCLAVE_HOME/plugins; hash from the lock file.
	OriginInstalled Origin = "installed"
	// OriginPath: named by an explicit path; hashed at discovery.
	OriginPath Origin = "path"
)

// Binary is a resolved plugin binary. SHA256 is the checksum trusted for
// it; every launch re-hashes the file and refuses to start on a mismatch,
// so a binary swapped after discovery never runs.
type Binary struct {
	// Source is the canonical source: builtin/<kind>-<name>, an installed
	// name, or an absolute path.
	Source string `json:"source"`
	// ShortName is the file name without the nemoclave-plugin- prefix
	// (embeddings-hash); it names the plugin in logs and reattach entries.
	ShortName string `json:"short_name"`
	Origin    Origin `json:"origin"`
	Path      string `json:"path"`
	SHA256    []byte `json:"-"`
}

// Checksum is SHA256 in hex.
func (b *Binary) Checksum() string { return hex.EncodeToString(b.SHA256) }

// KindHint is the kind named by the binary (the part of ShortName before
// the first '-'), used for log names before the plugin is asked.
func (b *Binary) KindHint() string {
	k, _, _ := strings.Cut(b.ShortName, "-")
	return k
}

// ErrNotFound is returned (wrapped) when a source names no plugin.
var ErrNotFound = errors.New("plugin not found")

// Resolve finds the binary a source names. A source is builtin/<kind>-<name>,
// an installed plugin's name, a path (it contains a '/' or starts with '.'),
// or a builtin's short name (embeddings-hash) when no installed plugin has
// that name. Builtins and paths are hashed now; installed plugins take their
// checksum from the lock file, so tampering after install is caught at
// launch.
func (m *Manager) Resolve(source string) (*Binary, error) {
	switch {
	case source == "":
		return nil, fmt.Errorf("empty plugin source: use builtin/<kind>-<name>, an installed plugin name or a path")
	case strings.HasPrefix(source, BuiltinPrefix):
		return m.resolveBuiltin(strings.TrimPrefix(source, BuiltinPrefix))
	case strings.ContainsRune(source, '/') || strings.HasPrefix(source, "."):
		return resolvePath(source)
	}
	b, err := m.resolveInstalled(source)
	if err == nil || !errors.Is(err, ErrNotFound) {
		return b, err
	}
	if b, berr := m.resolveBuiltin(source); berr == nil {
		return b, nil
	}
	return nil, fmt.Errorf("%w: %q is neither an installed plugin nor a builtin (builtins: %s); install it with `nemoclave plugin install --path <binary> --name %s` or give a path", ErrNotFound, source, strings.Join(m.builtinNames(), ", "), source)
}

func (m *Manager) resolveBuiltin(short string) (*Binary, error) {
	if !validName(short) {
		return nil, fmt.Errorf("%w: invalid builtin plugin name %q (want builtin/<kind>-<name>)", ErrNotFound, short)
	}
	path := filepath.Join(m.binDir, BinaryPrefix+short)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("%w: builtin/%s: no %s in %s (build it with `make plugins`, or set NEMOCLAVE_BIN_DIR to the directory holding the plugin binaries; builtins here: %s)",
			ErrNotFound, short, BinaryPrefix+short, m.binDir, strings.Join(m.builtinNames(), ", "))
	}
	sum, err := hashFile(path)
	if err != nil {
		return nil, err
	}
	return &Binary{Source: BuiltinPrefix + short, ShortName: short, Origin: OriginBuiltin, Path: path, SHA256: sum}, nil
}

func resolvePath(p string) (*Binary, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrNotFound, p, err)
	}
	if st.IsDir() || st.Mode().Perm()&0o111 == 0 {
		return nil, fmt.Errorf("plugin %s is not an executable file", abs)
	}
	sum, err := hashFile(abs)
	if err != nil {
		return nil, err
	}
	return &Binary{Source: abs, ShortName: shortName(abs), Origin: OriginPath, Path: abs, SHA256: sum}, nil
}

func (m *Manager) resolveInstalled(name string) (*Binary, error) {
	lock, err := readLock(m.pluginsDir())
	if err != nil {
		return nil, err
	}
	e, ok := lock.Plugins[name]
	if !ok {
		return nil, fmt.Errorf("%w: no installed plugin %q", ErrNotFound, name)
	}
	return e.binary(m.pluginsDir(), name)
}

// Builtins lists the builtin plugins beside the nemoclave binary, hashed.
func (m *Manager) Builtins() ([]*Binary, error) {
	var out []*Binary
	for _, short := range m.builtinNames() {
		b, err := m.resolveBuiltin(short)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// Installed lists the plugins recorded in the lock file.
func (m *Manager) Installed() ([]*Binary, error) {
	lock, err := readLock(m.pluginsDir())
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(lock.Plugins))
	for n := range lock.Plugins {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]*Binary, 0, len(names))
	for _, n := range names {
		b, err := lock.Plugins[n].binary(m.pluginsDir(), n)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// builtinNames lists the short names of the builtins in binDir.
func (m *Manager) builtinNames() []string {
	entries, err := os.ReadDir(m.binDir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		n := e.Name()
		if !strings.HasPrefix(n, BinaryPrefix) || e.IsDir() {
			continue
		}
		if e.Type()&fs.ModeSymlink == 0 {
			if info, err := e.Info(); err != nil || info.Mode().Perm()&0o111 == 0 {
				continue
			}
		}
		out = append(out, strings.TrimPrefix(n, BinaryPrefix))
	}
	sort.Strings(out)
	return out
}

func shortName(path string) string {
	return strings.TrimPrefix(filepath.Base(path), BinaryPrefix)
}

// validName accepts the names used for installed plugins and builtins:
// lower-case letters, digits, '-', '_' and '.', not starting with '.'.
func validName(s string) bool {
	if s == "" || len(s) > 128 || s[0] == '.' || s[0] == '-' {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
		default:
			return false
		}
	}
	return true
}

// fileID identifies one version of a file: replacing or rewriting it
// changes the inode, size, mtime or ctime.
type fileID struct {
	dev, ino           uint64
	size, mtime, ctime int64
}

// hashes caches discovery hashes by fileID, so resolving the same builtin
// again does not re-read 20 MB. It only saves work at discovery: every
// launch still re-hashes the file (go-plugin's SecureConfig) and refuses a
// mismatch.
var hashes sync.Map // fileID -> []byte

func hashFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("hash plugin %s: %w", path, err)
	}
	defer f.Close()
	var id fileID
	var st syscall.Stat_t
	cacheable := syscall.Fstat(int(f.Fd()), &st) == nil
	if cacheable {
		id = fileID{dev: st.Dev, ino: st.Ino, size: st.Size, mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano()}
		if sum, ok := hashes.Load(id); ok {
			return sum.([]byte), nil
		}
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("hash plugin %s: %w", path, err)
	}
	sum := h.Sum(nil)
	if cacheable {
		hashes.Store(id, sum)
	}
	return sum, nil
}
