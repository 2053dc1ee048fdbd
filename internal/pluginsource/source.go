package pluginsource

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/hashicorp/go-version"
)

// Type classifies a source.
type Type string

// Source types. The strings are those blueprints report in plan output.
const (
	Builtin   Type = "builtin"
	Installed Type = "installed"
	Path      Type = "path"
	MCP       Type = "mcp"
)

// BuiltinPrefix starts every builtin source.
const BuiltinPrefix = "builtin/"

// Source is a parsed plugin source.
type Source struct {
	Type Type
	// Builtin is <kind>-<name> for builtin sources.
	Builtin string
	// Host, Namespace and Name make up an installed address.
	Host, Namespace, Name string
	// Version is an exact version after '@' (installed addresses only).
	Version string
	// Path is the path as written, for path sources.
	Path string
}

// Address is host/namespace/name for installed sources.
func (s Source) Address() string {
	return s.Host + "/" + s.Namespace + "/" + s.Name
}

// String is the canonical form: what Parse accepts and what lock files
// and messages use.
func (s Source) String() string {
	switch s.Type {
	case Builtin:
		return BuiltinPrefix + s.Builtin
	case Installed:
		if s.Version != "" {
			return s.Address() + "@" + s.Version
		}
		return s.Address()
	case Path:
		return s.Path
	case MCP:
		return "mcp"
	}
	return ""
}

// Kind is the plugin kind a builtin's name starts with ("" otherwise).
func (s Source) Kind() string {
	k, _, _ := strings.Cut(s.Builtin, "-")
	return k
}

// Hint is what every parse error ends with.
const Hint = "Use builtin/<kind>-<name>, an installed address <host>/<namespace>/<name> (example.com/acme/wordcount), or a path to a plugin binary starting with ./, ../ or /."

// IsPath reports whether s is written as a path.
func IsPath(s string) bool {
	return strings.HasPrefix(s, "./") || strings.HasPrefix(s, "../") || filepath.IsAbs(s)
}

// Parse parses a source. mcp is accepted only when allowMCP is set (it is
// a blueprint form, not something to install or resolve).
func Parse(s string, allowMCP bool) (Source, error) {
	switch {
	case s == "":
		return Source{}, fmt.Errorf("empty plugin source. %s", Hint)
	case s == "mcp":
		if !allowMCP {
			return Source{}, fmt.Errorf(`"mcp" is a blueprint source for imported MCP servers, not a plugin to install or launch`)
		}
		return Source{Type: MCP}, nil
	case IsPath(s):
		return Source{Type: Path, Path: s}, nil
	case strings.HasPrefix(s, BuiltinPrefix):
		name := strings.TrimPrefix(s, BuiltinPrefix)
		kind, rest, ok := strings.Cut(name, "-")
		if !ok || !validSegment(kind) || !validSegment(rest) || strings.Contains(name, "/") {
			return Source{}, fmt.Errorf("%q is not a builtin source: builtin plugins are named builtin/<kind>-<name> (builtin/llm-openai)", s)
		}
		return Source{Type: Builtin, Builtin: name}, nil
	}
	addr, ver, hasVer := strings.Cut(s, "@")
	parts := strings.Split(addr, "/")
	if len(parts) != 3 {
		if len(parts) == 1 {
			return Source{}, fmt.Errorf("%q is not a plugin source: a bare name is ambiguous. %s", s, Hint)
		}
		return Source{}, fmt.Errorf("%q is not a plugin source: an installed address has three parts, <host>/<namespace>/<name> (example.com/acme/wordcount); a path must start with ./, ../ or /", s)
	}
	if !validHost(parts[0]) {
		return Source{}, fmt.Errorf("%q is not a plugin address: %q is not a host name (lower-case letters, digits, '-' and '.', with at least one '.': example.com)", s, parts[0])
	}
	for _, p := range parts[1:] {
		if !validSegment(p) {
			return Source{}, fmt.Errorf("%q is not a plugin address: %q must be lower-case letters, digits, '-' and '_', starting with a letter or digit", s, p)
		}
	}
	src := Source{Type: Installed, Host: parts[0], Namespace: parts[1], Name: parts[2]}
	if hasVer {
		if _, err := ParseVersion(ver); err != nil {
			return Source{}, fmt.Errorf("%q: %w", s, err)
		}
		src.Version = ver
	}
	return src, nil
}

// ParseVersion checks an exact plugin version (semantic versioning: 0.1.0,
// 1.2.3-beta.1). A leading v is refused so that one version has one
// spelling in lock files and install directories.
func ParseVersion(v string) (*version.Version, error) {
	if v == "" || strings.HasPrefix(v, "v") || strings.ContainsAny(v, "/ \t") {
		return nil, fmt.Errorf("invalid plugin version %q: write a semantic version like 0.1.0", v)
	}
	pv, err := version.NewSemver(v)
	if err != nil {
		return nil, fmt.Errorf("invalid plugin version %q: write a semantic version like 0.1.0", v)
	}
	return pv, nil
}

// ParseConstraint checks a version constraint (">= 0.2, < 1.0").
func ParseConstraint(c string) (version.Constraints, error) {
	vc, err := version.NewConstraint(c)
	if err != nil {
		return nil, fmt.Errorf("invalid version constraint %q: %v. Write constraints like \">= 1.2, < 2.0\"", c, err)
	}
	return vc, nil
}

func validSegment(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
		case (r == '-' || r == '_') && i > 0:
		default:
			return false
		}
	}
	return true
}

func validHost(s string) bool {
	if len(s) > 253 || !strings.Contains(s, ".") || strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") || strings.Contains(s, "..") {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '.':
		default:
			return false
		}
	}
	return true
}
