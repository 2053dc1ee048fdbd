package plugins

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// LockFileName is the lock file in $NEMOCLAVE_HOME/plugins. It is the only
// source of trust for installed plugins: a binary whose hash differs from
// its entry is refused at launch.
const LockFileName = "plugins.lock.json"

const lockVersion = 1

// lockFile is plugins.lock.json.
type lockFile struct {
	Version int                  `json:"version"`
	Plugins map[string]lockEntry `json:"plugins"`
}

// lockEntry records one installed plugin.
type lockEntry struct {
	// File is relative to the plugins directory, so the home can move.
	File   string `json:"file"`
	SHA256 string `json:"sha256"`
	// InstalledFrom is the path given to `plugin install`, for humans.
	InstalledFrom string    `json:"installed_from,omitempty"`
	InstalledAt   time.Time `json:"installed_at"`
	Version       string    `json:"version,omitempty"`
	Kinds         []string  `json:"kinds,omitempty"`
}

func (e lockEntry) binary(dir, name string) (*Binary, error) {
	sum, err := hex.DecodeString(e.SHA256)
	if err != nil || len(sum) != 32 {
		return nil, fmt.Errorf("%s: entry %q has a malformed sha256; reinstall it with `nemoclave plugin install --path <binary> --name %s`", filepath.Join(dir, LockFileName), name, name)
	}
	if filepath.Base(e.File) != e.File {
		return nil, fmt.Errorf("%s: entry %q points outside the plugins directory (%q); reinstall it", filepath.Join(dir, LockFileName), name, e.File)
	}
	return &Binary{Source: name, ShortName: name, Origin: OriginInstalled, Path: filepath.Join(dir, e.File), SHA256: sum}, nil
}

func readLock(dir string) (*lockFile, error) {
	path := filepath.Join(dir, LockFileName)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &lockFile{Version: lockVersion, Plugins: map[string]lockEntry{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read plugin lock file: %w", err)
	}
	var lf lockFile
	if err := json.Unmarshal(b, &lf); err != nil {
		return nil, fmt.Errorf("%s is not valid JSON (%w); fix or delete it and reinstall your plugins", path, err)
	}
	if lf.Version != lockVersion {
		return nil, fmt.Errorf("%s has version %d, this nemoclave reads version %d; upgrade nemoclave", path, lf.Version, lockVersion)
	}
	if lf.Plugins == nil {
		lf.Plugins = map[string]lockEntry{}
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
	tmp, err := os.CreateTemp(dir, LockFileName+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
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
	return os.Rename(tmp.Name(), filepath.Join(dir, LockFileName))
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

// Install copies the plugin binary at path into $NEMOCLAVE_HOME/plugins as
// name (default: the file name without nemoclave-plugin-), checks that it
// is a plugin by asking for its Info, and records its sha256 in the lock
// file. Reinstalling a name replaces it.
func (m *Manager) Install(ctx context.Context, path, name string) (*Binary, error) {
	if name == "" {
		name = shortName(path)
	}
	if !validName(name) {
		return nil, fmt.Errorf("invalid plugin name %q: use lower-case letters, digits, '-', '_' and '.' (pass --name)", name)
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("install plugin: %w", err)
	}
	dir := m.pluginsDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("install plugin: %w", err)
	}
	var out *Binary
	err = withInstallLock(dir, func() error {
		tmp, err := os.CreateTemp(dir, ".install-*")
		if err != nil {
			return err
		}
		defer os.Remove(tmp.Name())
		if _, err := io.Copy(tmp, bytes.NewReader(src)); err != nil {
			tmp.Close()
			return err
		}
		if err := tmp.Chmod(0o755); err != nil {
			tmp.Close()
			return err
		}
		if err := tmp.Close(); err != nil {
			return err
		}
		sum, err := hashFile(tmp.Name())
		if err != nil {
			return err
		}
		candidate := &Binary{Source: name, ShortName: name, Origin: OriginInstalled, Path: tmp.Name(), SHA256: sum}
		info, err := m.probe(ctx, candidate)
		if err != nil {
			return fmt.Errorf("%s does not run as a nemoclave plugin, not installing it: %w", path, err)
		}
		file := BinaryPrefix + name
		if err := os.Rename(tmp.Name(), filepath.Join(dir, file)); err != nil {
			return err
		}
		lock, err := readLock(dir)
		if err != nil {
			return err
		}
		abs, _ := filepath.Abs(path)
		e := lockEntry{File: file, SHA256: hex.EncodeToString(sum), InstalledFrom: abs, InstalledAt: time.Now().UTC(), Version: info.Version}
		for _, k := range info.Kinds {
			e.Kinds = append(e.Kinds, string(k))
		}
		lock.Plugins[name] = e
		if err := writeLock(dir, lock); err != nil {
			return err
		}
		out, err = e.binary(dir, name)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("install plugin %s: %w", name, err)
	}
	return out, nil
}
