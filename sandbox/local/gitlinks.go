package local

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// Submodules: a host git status in the workspace recurses into every
// gitlink of the index and reads that submodule's own git directory. With
// .git read-only the index cannot gain a gitlink, but a submodule the user
// already has is checked out in the writable workspace: the agent could
// replace its "<path>/.git" (a "gitdir:" file, or a directory) with a
// repository whose configuration runs a command. So "<path>/.git" of every
// gitlink (read from the index, and from .gitmodules for the ones not
// checked out) is protected as well; a missing one gets an empty directory
// placeholder, which git does not take for a repository.

// maxIndexBytes bounds the index read at start.
const maxIndexBytes = 64 << 20

// withSubmodules adds "<path>/.git" for each gitlink when the whole .git is
// protected (the default; with git_writable the index itself is writable,
// see docs/policies.md).
func withSubmodules(ws string, protected []string) []string {
	whole := false
	for _, p := range protected {
		if p == ".git" {
			whole = true
		}
	}
	if !whole {
		return protected
	}
	seen := map[string]bool{}
	for _, p := range protected {
		seen[p] = true
	}
	for _, sub := range append(indexGitlinks(ws), gitmodulesPaths(ws)...) {
		c := path.Clean(sub)
		if c == "." || path.IsAbs(c) || c == ".." || strings.HasPrefix(c, "../") || c == ".git" || strings.HasPrefix(c, ".git/") {
			continue
		}
		if p := c + "/.git"; !seen[p] {
			seen[p] = true
			protected = append(protected, p)
		}
	}
	return protected
}

// readBeneath reads a regular workspace file without following symlinks.
func readBeneath(ws, rel string) []byte {
	root, err := unix.Open(ws, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	defer unix.Close(root)
	fd, err := openBeneath(root, rel, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return nil
	}
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(f, maxIndexBytes))
	return b
}

// indexGitlinks lists the paths of mode-160000 entries of a version 2 or 3
// index (version 4 compresses paths; its gitlinks come from .gitmodules).
func indexGitlinks(ws string) []string {
	b := readBeneath(ws, ".git/index")
	if len(b) < 12 || string(b[:4]) != "DIRC" {
		return nil
	}
	ver, n := binary.BigEndian.Uint32(b[4:8]), binary.BigEndian.Uint32(b[8:12])
	if ver != 2 && ver != 3 {
		return nil
	}
	var out []string
	off := 12
	for i := uint32(0); i < n; i++ {
		if off+62 > len(b) {
			break
		}
		e := b[off:]
		mode := binary.BigEndian.Uint32(e[24:28])
		flags := binary.BigEndian.Uint16(e[60:62])
		hdr := 62
		if flags&0x4000 != 0 {
			hdr += 2
		}
		end := bytes.IndexByte(e[min(hdr, len(e)):], 0)
		if end < 0 {
			break
		}
		name := string(e[hdr : hdr+end])
		if mode&0o170000 == 0o160000 {
			out = append(out, name)
		}
		off += (hdr + end + 8) &^ 7
	}
	return out
}

// gitmodulesPaths lists the "path = …" values of .gitmodules.
func gitmodulesPaths(ws string) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(readBeneath(ws, ".gitmodules")))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if ok && strings.TrimSpace(k) == "path" {
			out = append(out, strings.Trim(strings.TrimSpace(v), `"`))
		}
	}
	return out
}
