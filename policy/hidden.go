package policy

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Exposes reports whether granting the sandbox path p (read-only or
// read-write) would make hidden visible inside it: p is hidden, one of its
// parents, or lies below it. Both are compared as written and with
// symlinks resolved on this host, since a bind mount follows them (F19).
func Exposes(p, hidden string) bool {
	if p == "" || hidden == "" {
		return false
	}
	for _, a := range variants(p) {
		for _, b := range variants(hidden) {
			if related(a, b) {
				return true
			}
		}
	}
	return false
}

func variants(p string) []string {
	c := filepath.Clean(p)
	out := []string{c}
	if abs, err := filepath.Abs(c); err == nil && abs != c {
		out = append(out, abs)
	}
	if r, err := filepath.EvalSymlinks(c); err == nil && r != c {
		out = append(out, r)
	}
	return out
}

func related(a, b string) bool {
	if a == b || a == "/" || b == "/" {
		return true
	}
	return strings.HasPrefix(b, a+"/") || strings.HasPrefix(a, b+"/")
}

// sandboxBuilt are sandbox paths the drivers create from nothing (a fresh
// tmpfs, proc or device directory, the workspace mount) rather than bind
// from the same host path: granting them exposes no host directory.
var sandboxBuilt = []string{"/workspace", "/tmp", "/proc", "/dev"}

// SandboxBuilt reports whether p is "/" or lies in a path the sandbox
// builds itself.
func SandboxBuilt(p string) bool {
	c := filepath.Clean(p)
	if c == "/" {
		return true
	}
	for _, s := range sandboxBuilt {
		if c == s || strings.HasPrefix(c, s+"/") {
			return true
		}
	}
	return false
}

// Contains reports whether dir is p or one of its parents, comparing the
// paths as written and with symlinks resolved.
func Contains(dir, p string) bool {
	for _, a := range variants(dir) {
		for _, b := range variants(p) {
			if a == b || a == "/" || strings.HasPrefix(b, a+"/") {
				return true
			}
		}
	}
	return false
}

// CheckHidden refuses a filesystem policy whose read_only or read_write
// paths expose the nemoclave home (its daemon socket, credentials.json,
// state store and sandboxes' state all live there). The error names the
// path and what to do.
func (f Filesystem) CheckHidden(home string) error {
	if home == "" {
		return nil
	}
	for _, list := range [][]string{f.ReadOnly, f.ReadWrite} {
		for _, p := range list {
			if SandboxBuilt(p) {
				continue // not a host path: the sandbox makes it from nothing
			}
			if Exposes(p, home) {
				return fmt.Errorf("%s", HiddenMessage(p, home))
			}
		}
	}
	return nil
}

// HiddenMessage explains why path p cannot be granted.
func HiddenMessage(p, home string) string {
	return fmt.Sprintf("filesystem path %s exposes %s, the nemoclave home (daemon socket, credentials.json, state): a sandbox that sees it could read the credentials or drive the daemon — grant a narrower path that does not contain it, or move NEMOCLAVE_HOME outside the granted directories", p, home)
}
