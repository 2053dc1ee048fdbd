package plugins

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-version"

	"github.com/nemoclave/nemoclave/internal/pluginsource"
)

// LockFileName is the install registry in $NEMOCLAVE_HOME/plugins: every
// installed address and version with the hash trusted for it. A plugin
// whose files differ from their entry is refused at launch. (The per-project
// lock beside a blueprint is ProjectLockName.)
const LockFileName = "plugins.lock.json"

// lockVersion 2 keys entries by address and version; version 1 (one entry
// per bare name) is refused with a message to reinstall.
const lockVersion = 2

// lockFile is plugins.lock.json.
type lockFile struct {
	Version int `json:"version"`
	// Plugins maps address → version → entry.
	Plugins map[string]map[string]lockEntry `json:"plugins"`
}

// lockEntry records one installed version.
type lockEntry struct {
	// Dir is relative to the plugins directory, so the home can move.
	Dir string `json:"dir"`
	// Entry is the executable, relative to Dir.
	Entry string `json:"entry"`
	// Tree is set when the plugin was installed from a directory or an
	// archive: Hash then covers every file under Dir.
	Tree bool `json:"tree,omitempty"`
	// Hash is the lock-file hash (sha256:… or h1:…).
	Hash string `json:"hash"`
	// SHA256 is the executable's own sha256 in hex.
	SHA256 string `json:"sha256"`
	// InstalledFrom is the path given to `plugin install`, for humans.
	InstalledFrom string    `json:"installed_from,omitempty"`
	InstalledAt   time.Time `json:"installed_at"`
	Kinds         []string  `json:"kinds,omitempty"`
}

func (e lockEntry) binary(dir, address, ver string) (*Binary, error) {
	sum, err := hex.DecodeString(e.SHA256)
	bad := func(why string) error {
		return fmt.Errorf("%s: entry %s %s %s; reinstall it with `nemoclave plugin install %s --path <binary> --version %s`", filepath.Join(dir, LockFileName), address, ver, why, address, ver)
	}
	if err != nil || len(sum) != sha256Len {
		return nil, bad("has a malformed sha256")
	}
	root := filepath.Join(dir, filepath.FromSlash(e.Dir))
	path := filepath.Join(root, filepath.FromSlash(e.Entry))
	if !within(dir, root) || !within(root, path) || e.Entry == "" {
		return nil, bad("points outside the plugins directory")
	}
	b := &Binary{Source: address + "@" + ver, ShortName: shortName(path), Origin: OriginInstalled, Path: path, SHA256: sum,
		Address: address, Version: ver, Hash: e.Hash}
	if e.Tree {
		b.Root = root
	}
	return b, nil
}

// within reports whether p is inside dir (or is dir).
func within(dir, p string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../") && !filepath.IsAbs(rel)
}

func readLock(dir string) (*lockFile, error) {
	path := filepath.Join(dir, LockFileName)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &lockFile{Version: lockVersion, Plugins: map[string]map[string]lockEntry{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read plugin lock file: %w", err)
	}
	var lf lockFile
	if err := json.Unmarshal(b, &lf); err != nil {
		return nil, fmt.Errorf("%s is not valid JSON (%w); fix or delete it and reinstall your plugins", path, err)
	}
	if lf.Version == 1 {
		return nil, fmt.Errorf("%s was written by an older nemoclave (plugins by bare name); move it aside and reinstall each plugin under an address: `nemoclave plugin install example.com/<you>/<name> --path <binary> --version <v>`", path)
	}
	if lf.Version != lockVersion {
		return nil, fmt.Errorf("%s has version %d, this nemoclave reads version %d; upgrade nemoclave", path, lf.Version, lockVersion)
	}
	if lf.Plugins == nil {
		lf.Plugins = map[string]map[string]lockEntry{}
	}
	return &lf, nil
}

// writeLock replaces the lock file atomically, so a crash mid-write leaves
// the old one rather than a truncated file that trusts nothing.
func writeLock(dir string, lf *lockFile) error {
	b, err := json.MarshalIndent(lf, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(dir, LockFileName), append(b, '\n'), 0o644)
}

func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// withInstallLock serialises installs in one home (two shells installing at
// once must not lose an entry).
func withInstallLock(dir string, f func() error) error {
	fd, err := os.OpenFile(filepath.Join(dir, ".install.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer fd.Close()
	if err := syscall.Flock(int(fd.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	defer syscall.Flock(int(fd.Fd()), syscall.LOCK_UN) //nolint:errcheck // closing releases it anyway
	return f()
}

// InstalledVersions lists the installed versions of address, newest first.
func (m *Manager) InstalledVersions(address string) ([]string, error) {
	lock, err := readLock(m.pluginsDir())
	if err != nil {
		return nil, err
	}
	return sortedVersions(lock.Plugins[address]), nil
}

func sortedVersions(vs map[string]lockEntry) []string {
	type pv struct {
		s string
		v *version.Version
	}
	var list []pv
	for s := range vs {
		if v, err := version.NewVersion(s); err == nil {
			list = append(list, pv{s, v})
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].v.GreaterThan(list[j].v) })
	out := make([]string, len(list))
	for i, p := range list {
		out[i] = p.s
	}
	return out
}

// resolveInstalled picks the version src names (exact after '@'), else the
// newest installed version satisfying constraint.
func (m *Manager) resolveInstalled(src pluginsource.Source, constraint string) (*Binary, error) {
	lock, err := readLock(m.pluginsDir())
	if err != nil {
		return nil, err
	}
	addr := src.Address()
	versions := lock.Plugins[addr]
	installHint := fmt.Sprintf("install it with `nemoclave plugin install %s --path <binary|dir|archive> --version <version>`", addr)
	if len(versions) == 0 {
		return nil, fmt.Errorf("%w: %s is not installed in %s; %s", ErrNotFound, addr, m.pluginsDir(), installHint)
	}
	all := sortedVersions(versions)
	if src.Version != "" {
		e, ok := versions[src.Version]
		if !ok {
			return nil, fmt.Errorf("%w: %s version %s is not installed (installed: %s); %s", ErrNotFound, addr, src.Version, strings.Join(all, ", "), installHint)
		}
		if constraint != "" {
			c, err := pluginsource.ParseConstraint(constraint)
			if err != nil {
				return nil, err
			}
			if !c.Check(version.Must(version.NewVersion(src.Version))) {
				return nil, fmt.Errorf("%w: %s version %s does not satisfy %q (installed: %s); %s", ErrNotFound, addr, src.Version, constraint, strings.Join(all, ", "), installHint)
			}
		}
		return e.binary(m.pluginsDir(), addr, src.Version)
	}
	var c version.Constraints
	if constraint != "" {
		if c, err = pluginsource.ParseConstraint(constraint); err != nil {
			return nil, err
		}
	}
	for _, v := range all {
		if c == nil || c.Check(version.Must(version.NewVersion(v))) {
			return versions[v].binary(m.pluginsDir(), addr, v)
		}
	}
	return nil, fmt.Errorf("%w: no installed version of %s satisfies %q (installed: %s); %s", ErrNotFound, addr, constraint, strings.Join(all, ", "), installHint)
}

// Installed lists every installed address and version.
func (m *Manager) Installed() ([]*Binary, error) {
	lock, err := readLock(m.pluginsDir())
	if err != nil {
		return nil, err
	}
	addrs := make([]string, 0, len(lock.Plugins))
	for a := range lock.Plugins {
		addrs = append(addrs, a)
	}
	sort.Strings(addrs)
	var out []*Binary
	for _, a := range addrs {
		for _, v := range sortedVersions(lock.Plugins[a]) {
			b, err := lock.Plugins[a][v].binary(m.pluginsDir(), a, v)
			if err != nil {
				return nil, err
			}
			out = append(out, b)
		}
	}
	return out, nil
}
