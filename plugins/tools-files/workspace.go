package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/nemoclave/nemoclave/internal/wsfs"
	"github.com/nemoclave/nemoclave/sdk/tools"
)

// workspace is one call's view of the root: the config and the os.Root
// every file operation goes through.
type workspace struct {
	root *os.Root
	// dir performs every open of file contents (reads and writes): no
	// outward symlink, no FIFO or device, protected paths read-only.
	dir *wsfs.Dir
	cfg config
}

// resolve maps a path the model gave onto a slash-separated path relative
// to the root. It refuses lexical escapes with a clear message; os.Root
// then refuses symlinks that lead out when the path is opened.
func (w *workspace) resolve(p string) (string, error) {
	if p == "" {
		return ".", nil
	}
	if filepath.IsAbs(p) {
		clean := filepath.Clean(p)
		rel, ok := below(w.cfg.WorkspacePath, clean)
		if !ok {
			rel, ok = below(w.cfg.Root, clean)
		}
		if !ok {
			return "", fmt.Errorf("path %q is outside the workspace; use a path relative to the workspace or below %s", p, w.displayRoot())
		}
		return rel, nil
	}
	clean := path.Clean(filepath.ToSlash(p))
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("path %q climbs out of the workspace; only files inside it are reachable", p)
	}
	return clean, nil
}

// below reports p relative to dir when p is dir or inside it.
func below(dir, p string) (string, bool) {
	if dir == "" {
		return "", false
	}
	rel, err := filepath.Rel(filepath.Clean(dir), p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", false
	}
	return filepath.ToSlash(rel), true
}

// displayRoot is the root as the agent knows it.
func (w *workspace) displayRoot() string {
	if w.cfg.WorkspacePath != "" {
		return w.cfg.WorkspacePath
	}
	return w.cfg.Root
}

// explain turns a filesystem error into a message the model can act on,
// without leaking host paths outside the workspace.
func explain(p string, err error) string {
	var we *wsfs.Error
	if errors.As(err, &we) {
		return we.Error() // already phrased for the model, with p
	}
	switch {
	case strings.Contains(err.Error(), "path escapes from parent"):
		return fmt.Sprintf("%s: resolves outside the workspace (a symlink or \"..\" leads out); only files inside the workspace are reachable", p)
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Sprintf("%s: no such file or directory; use list_files to see what exists", p)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Sprintf("%s: permission denied", p)
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Sprintf("%s: %s: %v", p, pe.Op, pe.Err)
	}
	return fmt.Sprintf("%s: %v", p, err)
}

// decodeArgs unmarshals a tool's arguments, rejecting unknown fields so a
// misspelt argument is reported instead of silently ignored.
func decodeArgs(raw json.RawMessage, v any) *tools.CallResult {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return tools.ErrorResult(fmt.Sprintf("invalid arguments: %v; see the tool's input schema", err))
	}
	return nil
}

// compileGlob turns a glob into a regexp over slash-separated relative
// paths: "*" and "?" stay within one path element, "**" spans any number
// of them, [...] is a character class. A glob without "/" matches the base
// name at any depth, as shells users expect ("*.go").
func compileGlob(glob string) (*regexp.Regexp, bool, error) {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(glob); i++ {
		switch c := glob[i]; c {
		case '*':
			if i+1 < len(glob) && glob[i+1] == '*' {
				i++
				if i+1 < len(glob) && glob[i+1] == '/' {
					i++
					b.WriteString("(?:.*/)?")
				} else {
					b.WriteString(".*")
				}
			} else {
				b.WriteString("[^/]*")
			}
		case '?':
			b.WriteString("[^/]")
		case '[':
			j := strings.IndexByte(glob[i:], ']')
			if j < 0 {
				return nil, false, fmt.Errorf("glob %q: unclosed [", glob)
			}
			class := glob[i+1 : i+j]
			if strings.HasPrefix(class, "!") {
				class = "^" + class[1:]
			}
			b.WriteString("[" + class + "]")
			i += j
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, false, fmt.Errorf("glob %q: %v", glob, err)
	}
	return re, !strings.Contains(glob, "/"), nil
}

// matcher reports whether a relative path matches the glob ("" matches all).
type matcher struct {
	re       *regexp.Regexp
	baseOnly bool
}

func newMatcher(glob string) (matcher, error) {
	if glob == "" {
		return matcher{}, nil
	}
	re, base, err := compileGlob(glob)
	return matcher{re: re, baseOnly: base}, err
}

func (m matcher) match(rel string) bool {
	if m.re == nil {
		return true
	}
	if m.baseOnly {
		return m.re.MatchString(path.Base(rel))
	}
	return m.re.MatchString(rel)
}

// looksBinary reports whether data is probably not text: a NUL byte in the
// first 8 KiB, as git and grep decide.
func looksBinary(data []byte) bool {
	if len(data) > 8192 {
		data = data[:8192]
	}
	return bytes.IndexByte(data, 0) >= 0
}
