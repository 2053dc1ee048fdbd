package plugins

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nemoclave/nemoclave/internal/pluginsource"
)

// InstallRequest is what `nemoclave plugin install` asks for.
type InstallRequest struct {
	// Address is <host>/<namespace>/<name>.
	Address string
	// Path is a plugin binary, a directory holding one (a script with its
	// modules), or a .tar.gz/.tgz/.tar/.zip archive of such a directory.
	Path string
	// Version is the version to install as; empty means the version the
	// plugin reports in its Info.
	Version string
	// Entry is the executable inside a directory or archive, relative to
	// its root; empty means the one top-level executable named
	// nemoclave-plugin-*, or the only top-level executable.
	Entry string
}

// Install stages the plugin under $NEMOCLAVE_HOME/plugins, checks that it
// runs as a nemoclave plugin (its Info), then moves it to
// <host>/<namespace>/<name>/<version>/ and records its hash in the lock
// file. Other versions of the address stay installed side by side;
// reinstalling the same version replaces it. Installed files are made
// read-only, so an accidental edit fails rather than being refused later.
func (m *Manager) Install(ctx context.Context, req InstallRequest) (*Binary, error) {
	src, err := pluginsource.Parse(req.Address, false)
	if err != nil {
		return nil, err
	}
	if src.Type != pluginsource.Installed {
		return nil, fmt.Errorf("install: %q is not an address; install a plugin under <host>/<namespace>/<name>, e.g. example.com/acme/%s", req.Address, strings.TrimPrefix(shortName(req.Path), "tools-"))
	}
	if src.Version != "" {
		if req.Version != "" && req.Version != src.Version {
			return nil, fmt.Errorf("install: the address says version %s and --version says %s; give one", src.Version, req.Version)
		}
		req.Version = src.Version
	}
	if req.Version != "" {
		if _, err := pluginsource.ParseVersion(req.Version); err != nil {
			return nil, err
		}
	}
	addr := src.Address()
	dir := m.pluginsDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("install plugin: %w", err)
	}
	var out *Binary
	err = withInstallLock(dir, func() error {
		stage, err := os.MkdirTemp(dir, ".staging-")
		if err != nil {
			return err
		}
		defer makeWritableAndRemove(stage)
		entry, tree, err := stagePlugin(req.Path, req.Entry, stage)
		if err != nil {
			return err
		}
		cand, err := stagedBinary(stage, entry, tree)
		if err != nil {
			return err
		}
		cand.Source, cand.Origin, cand.Address = addr, OriginInstalled, addr
		info, err := m.probe(ctx, cand)
		if err != nil {
			return fmt.Errorf("%s does not run as a nemoclave plugin, not installing it: %w", req.Path, err)
		}
		ver := req.Version
		if ver == "" {
			if _, err := pluginsource.ParseVersion(info.Version); err != nil {
				return fmt.Errorf("the plugin reports version %q, which is not a semantic version; pass --version", info.Version)
			}
			ver = info.Version
		}
		rel := filepath.Join(src.Host, src.Namespace, src.Name, ver)
		final := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
			return err
		}
		makeWritableAndRemove(final)
		if err := readOnlyTree(stage); err != nil {
			return err
		}
		if err := os.Rename(stage, final); err != nil {
			return err
		}
		lock, err := readLock(dir)
		if err != nil {
			return err
		}
		abs, _ := filepath.Abs(req.Path)
		e := lockEntry{Dir: filepath.ToSlash(rel), Entry: filepath.ToSlash(entry), Tree: tree, Hash: cand.Hash,
			SHA256: hex.EncodeToString(cand.SHA256), InstalledFrom: abs, InstalledAt: time.Now().UTC()}
		for _, k := range info.Kinds {
			e.Kinds = append(e.Kinds, string(k))
		}
		if lock.Plugins[addr] == nil {
			lock.Plugins[addr] = map[string]lockEntry{}
		}
		lock.Plugins[addr][ver] = e
		if err := writeLock(dir, lock); err != nil {
			return err
		}
		out, err = e.binary(dir, addr, ver)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("install plugin %s: %w", addr, err)
	}
	return out, nil
}

// stagedBinary hashes a staged plugin.
func stagedBinary(root, entry string, tree bool) (*Binary, error) {
	path := filepath.Join(root, entry)
	sum, err := hashFile(path)
	if err != nil {
		return nil, err
	}
	b := &Binary{ShortName: shortName(path), Path: path, SHA256: sum, Hash: fileHash(sum)}
	if tree {
		b.Root = root
		if b.Hash, err = treeHash(root); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// stagePlugin copies or extracts path into stage and returns the entry
// point relative to stage, and whether the plugin is a tree.
func stagePlugin(path, entry, stage string) (string, bool, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", false, fmt.Errorf("install plugin: %w", err)
	}
	name := filepath.Base(path)
	switch {
	case st.IsDir():
		if err := copyTree(path, stage); err != nil {
			return "", false, err
		}
	case strings.HasSuffix(name, ".tar.gz") || strings.HasSuffix(name, ".tgz") || strings.HasSuffix(name, ".tar"):
		if err := extractTar(path, stage); err != nil {
			return "", false, fmt.Errorf("extract %s: %w", path, err)
		}
	case strings.HasSuffix(name, ".zip"):
		if err := extractZip(path, stage); err != nil {
			return "", false, fmt.Errorf("extract %s: %w", path, err)
		}
	default:
		if st.Mode().Perm()&0o111 == 0 {
			return "", false, fmt.Errorf("%s is not executable (chmod +x it), nor a directory or an archive (.tar.gz, .tgz, .tar, .zip)", path)
		}
		if err := copyFile(path, filepath.Join(stage, name), 0o755); err != nil {
			return "", false, err
		}
		return name, false, nil
	}
	// An archive of one top-level directory is that directory's plugin.
	root := stage
	if ents, err := os.ReadDir(stage); err == nil && len(ents) == 1 && ents[0].IsDir() {
		inner := filepath.Join(stage, ents[0].Name())
		tmp := stage + ".inner"
		if err := os.Rename(inner, tmp); err != nil {
			return "", false, err
		}
		if err := os.Remove(stage); err != nil {
			return "", false, err
		}
		if err := os.Rename(tmp, stage); err != nil {
			return "", false, err
		}
	}
	if entry != "" {
		p := filepath.Join(root, filepath.FromSlash(entry))
		if !within(root, p) {
			return "", false, fmt.Errorf("--entry %s leaves the plugin directory", entry)
		}
		if st, err := os.Stat(p); err != nil || st.Mode().Perm()&0o111 == 0 {
			return "", false, fmt.Errorf("--entry %s: not an executable file in %s", entry, path)
		}
		return filepath.Clean(filepath.FromSlash(entry)), true, nil
	}
	ents, err := os.ReadDir(root)
	if err != nil {
		return "", false, err
	}
	var prefixed, execs []string
	for _, e := range ents {
		if info, err := e.Info(); err == nil && e.Type().IsRegular() && info.Mode().Perm()&0o111 != 0 {
			execs = append(execs, e.Name())
			if strings.HasPrefix(e.Name(), BinaryPrefix) {
				prefixed = append(prefixed, e.Name())
			}
		}
	}
	switch {
	case len(prefixed) == 1:
		return prefixed[0], true, nil
	case len(prefixed) == 0 && len(execs) == 1:
		return execs[0], true, nil
	}
	return "", false, fmt.Errorf("%s: cannot tell which file is the plugin (top-level executables: %s); pass --entry <file>", path, strings.Join(execs, ", "))
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return writeFile(dst, in, mode)
}

func writeFile(dst string, r io.Reader, mode os.FileMode) error {
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			if rel == "__pycache__" || strings.HasSuffix(rel, "/__pycache__") {
				return filepath.SkipDir // interpreter caches, rewritten at run time
			}
			return os.MkdirAll(target, 0o755)
		case d.Type().IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			return copyFile(p, target, info.Mode().Perm()&0o755|0o644)
		}
		return fmt.Errorf("%s is not a regular file or directory (symlinks are not allowed in a plugin directory; copy the target in)", p)
	})
}

func safeJoin(root, name string) (string, error) {
	p := filepath.Join(root, filepath.FromSlash(name))
	if !within(root, p) || p == root {
		return "", fmt.Errorf("archive entry %q leaves the archive root", name)
	}
	return p, nil
}

func extractTar(path, dst string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = f
	if !strings.HasSuffix(path, ".tar") {
		gz, err := gzip.NewReader(f)
		if err != nil {
			return err
		}
		defer gz.Close()
		r = gz
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		p, err := safeJoin(dst, h.Name)
		if err != nil {
			if strings.Trim(h.Name, "./") == "" {
				continue // the archive root itself
			}
			return err
		}
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, 0o755)
		case tar.TypeReg:
			if err = os.MkdirAll(filepath.Dir(p), 0o755); err == nil {
				err = writeFile(p, tr, os.FileMode(h.Mode).Perm()&0o755|0o644)
			}
		default:
			err = fmt.Errorf("archive entry %s is not a regular file or directory (links are not allowed)", h.Name)
		}
		if err != nil {
			return err
		}
	}
}

func extractZip(path, dst string) error {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return err
	}
	defer zr.Close()
	for _, zf := range zr.File {
		p, err := safeJoin(dst, zf.Name)
		if err != nil {
			return err
		}
		mode := zf.Mode()
		switch {
		case mode.IsDir():
			err = os.MkdirAll(p, 0o755)
		case mode.IsRegular():
			var rc io.ReadCloser
			if rc, err = zf.Open(); err == nil {
				if err = os.MkdirAll(filepath.Dir(p), 0o755); err == nil {
					err = writeFile(p, rc, mode.Perm()&0o755|0o644)
				}
				rc.Close()
			}
		default:
			err = fmt.Errorf("archive entry %s is not a regular file or directory (links are not allowed)", zf.Name)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// readOnlyTree removes write permission from every file under root.
func readOnlyTree(root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return os.Chmod(p, info.Mode().Perm()&^0o222)
	})
}

// makeWritableAndRemove removes a tree whose files may be read-only (their
// directories stay writable, so removal works anyway; this is for clarity
// when running as an ordinary user on filesystems that differ).
func makeWritableAndRemove(root string) {
	_ = os.RemoveAll(root)
}
