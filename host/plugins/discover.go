package plugins

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/nemoclave/nemoclave/internal/pluginsource"
)

// BinaryPrefix starts the file name of every plugin binary, so builtins are
// recognisable among other files in the bin directory and in `ps`.
const BinaryPrefix = "nemoclave-plugin-"

// BuiltinPrefix starts the source of a builtin plugin: builtin/<kind>-<name>.
const BuiltinPrefix = pluginsource.BuiltinPrefix

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
// its executable; every launch verifies the file against it (see
// verify.go), so a binary swapped after discovery never runs.
type Binary struct {
	// Source is the canonical source: builtin/<kind>-<name>,
	// <host>/<namespace>/<name>@<version>, or an absolute path.
	Source string `json:"source"`
	// ShortName is the file name without the nemoclave-plugin- prefix
	// (embeddings-hash); it names the plugin in logs and reattach entries.
	ShortName string `json:"short_name"`
	Origin    Origin `json:"origin"`
	Path      string `json:"path"`
	SHA256    []byte `json:"-"`
	// Address and Version are set for installed plugins.
	Address string `json:"address,omitempty"`
	Version string `json:"version,omitempty"`
	// Root is the plugin's directory when it was installed from a
	// directory or archive: every file under it is covered by Hash.
	Root string `json:"root,omitempty"`
	// Hash is what lock files record: "sha256:<hex>" of the executable for
	// single-file plugins, "h1:<hex>" of the whole tree for directories.
	Hash string `json:"hash"`
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

// Resolve finds the binary a source names (see internal/pluginsource for
// the grammar): builtin/<kind>-<name>, an installed address (the newest
// installed version, or the one after '@'), or a path. Builtins and paths
// are hashed now (cached by file identity); installed plugins take their
// checksum from the install lock file, so tampering after install is
// caught at launch.
func (m *Manager) Resolve(source string) (*Binary, error) {
	return m.ResolveConstraint(source, "")
}

// ResolveConstraint is Resolve with a version constraint for installed
// addresses: the newest installed version that satisfies it. The error
// names the installed versions.
func (m *Manager) ResolveConstraint(source, constraint string) (*Binary, error) {
	src, err := pluginsource.Parse(source, false)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	switch src.Type {
	case pluginsource.Builtin:
		return m.resolveBuiltin(src.Builtin)
	case pluginsource.Path:
		return resolvePath(src.Path)
	}
	return m.resolveInstalled(src, constraint)
}

func (m *Manager) resolveBuiltin(short string) (*Binary, error) {
	path := filepath.Join(m.binDir, BinaryPrefix+short)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("%w: builtin/%s: no %s in %s (build it with `make plugins`, or set NEMOCLAVE_BIN_DIR to the directory holding the plugin binaries; builtins here: %s)",
			ErrNotFound, short, BinaryPrefix+short, m.binDir, strings.Join(m.builtinNames(), ", "))
	}
	sum, err := hashFile(path)
	if err != nil {
		return nil, err
	}
	return &Binary{Source: BuiltinPrefix + short, ShortName: short, Origin: OriginBuiltin, Path: path, SHA256: sum, Hash: fileHash(sum)}, nil
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
		return nil, fmt.Errorf("plugin %s is not an executable file (a path source names the plugin binary itself)", abs)
	}
	sum, err := hashFile(abs)
	if err != nil {
		return nil, err
	}
	return &Binary{Source: abs, ShortName: shortName(abs), Origin: OriginPath, Path: abs, SHA256: sum, Hash: fileHash(sum)}, nil
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
		if _, err := pluginsource.Parse(BuiltinPrefix+strings.TrimPrefix(n, BinaryPrefix), false); err != nil {
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
