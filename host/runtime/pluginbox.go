package runtime

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/nemoclave/nemoclave/sandbox"
	"github.com/nemoclave/nemoclave/sandbox/pluginbox"
)

// pluginBox is the box every plugin of this daemon starts in: the small
// nemoclave-pluginbox binary beside the daemon's (or among the builtin
// plugins) as the box's init, else the daemon's own binary, which calls
// pluginbox.MaybeInit too but starts slower; an empty root mount point
// under Home; the same cgroup parent as the local driver's sandboxes.
func pluginBox(o Options) (*pluginbox.Box, error) {
	exe, err := beside(o, "nemoclave-pluginbox")
	if err != nil {
		return nil, fmt.Errorf("plugin confinement: cannot find the nemoclave binary to start plugin boxes with: %w", err)
	}
	root := filepath.Join(o.Home, "run", "pluginbox-root")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("plugin confinement: %w (check that %s is writable)", err, o.Home)
	}
	return &pluginbox.Box{Launcher: exe, RootDir: root, CgroupParent: cgroupParent(o.Home)}, nil
}

// pluginAccess derives what a confined plugin may reach from its config,
// the rule docs/plugins.md states: every absolute path its config names is
// visible (writable for the kinds that keep data there or act on it:
// memory, retrieval, tools; read-only otherwise), and a plugin whose config
// names a URL or a database address keeps the host network with TCP
// connect limited to those ports. Everything else gets no network at all.
func pluginAccess(source, kind string, cfg json.RawMessage) *pluginbox.Profile {
	var v any
	_ = json.Unmarshal(cfg, &v)
	var strs []string
	collectStrings(v, &strs)
	writable := kind == "memory" || kind == "retrieval" || kind == "tools"
	// A daemon that is not root can create cgroups only where one was
	// delegated to it; rather than refuse every plugin there, its boxes run
	// without cgroup limits (the runner logs a warning), as a sandbox with
	// resources.allow_unlimited does. Everything else still fails closed.
	p := &pluginbox.Profile{Resources: sandbox.Resources{AllowUnlimited: os.Geteuid() != 0}}
	ports := map[int]bool{}
	seen := map[string]bool{}
	for _, s := range strs {
		switch {
		case filepath.IsAbs(s) && !strings.ContainsAny(s, "\n\x00"):
			path := filepath.Clean(s)
			if st, err := os.Stat(path); err != nil || !st.IsDir() {
				if !writable && err != nil {
					continue // nothing to read there
				}
				if writable {
					path = filepath.Dir(path) // a database file: its journal lives beside it
				}
			}
			if path == "/" || seen[path] {
				continue
			}
			seen[path] = true
			if writable {
				p.ReadWrite = append(p.ReadWrite, path)
			} else {
				p.ReadOnly = append(p.ReadOnly, path)
			}
		default:
			for _, port := range addrPorts(s) {
				ports[port] = true
			}
		}
	}
	// tools-http fetches what the agent asks for: the web's ports.
	if strings.HasSuffix(source, "tools-http") {
		ports[80], ports[443] = true, true
	}
	if len(ports) > 0 {
		p.Network = pluginbox.NetworkHost
		for port := range ports {
			p.Ports = append(p.Ports, port)
		}
		sort.Ints(p.Ports)
	}
	return p
}

// unboxable says why a plugin cannot run in a box, or "". tools-mcp with a
// stdio server builds a local sandbox of its own for that server (user,
// mount and pid namespaces, cgroups), which the box's seccomp filter and
// empty capability set forbid by design; it runs as before, unconfined,
// its server confined by that sandbox.
func unboxable(source string, cfg json.RawMessage) string {
	if !strings.HasSuffix(source, "tools-mcp") {
		return ""
	}
	var c struct {
		Command []string `json:"command"`
	}
	if json.Unmarshal(cfg, &c) == nil && len(c.Command) > 0 {
		return "tools-mcp runs its stdio server in a local sandbox of its own, which cannot be built from inside a plugin box"
	}
	return ""
}

func collectStrings(v any, out *[]string) {
	switch t := v.(type) {
	case string:
		*out = append(*out, t)
	case []any:
		for _, e := range t {
			collectStrings(e, out)
		}
	case map[string]any:
		for _, e := range t {
			collectStrings(e, out)
		}
	}
}

var dsnPort = regexp.MustCompile(`(?:^|\s)port=(\d+)`)

// addrPorts returns the TCP ports a URL or a libpq key/value DSN names
// (the scheme's default when the URL has none).
func addrPorts(s string) []int {
	if m := dsnPort.FindStringSubmatch(s); m != nil {
		if n, err := strconv.Atoi(m[1]); err == nil {
			return []int{n}
		}
	}
	if strings.Contains(s, "host=") {
		return []int{5432}
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return nil
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err == nil {
			return []int{n}
		}
	}
	switch u.Scheme {
	case "http", "ws":
		return []int{80}
	case "https", "wss":
		return []int{443}
	case "postgres", "postgresql":
		return []int{5432}
	}
	return nil
}

// beside finds a small single-purpose binary (an init stage) beside the
// daemon's, among the builtin plugins, or in NEMOCLAVE_BIN_DIR; without
// one it is the daemon's own binary, whose main runs every init stage too
// but starts slower and holds more memory.
func beside(o Options, name string) (string, error) {
	exe := o.Executable
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return "", err
		}
	}
	if real, err := filepath.EvalSymlinks(exe); err == nil {
		exe = real
	}
	for _, dir := range []string{o.PluginBinDir, os.Getenv("NEMOCLAVE_BIN_DIR"), filepath.Dir(exe)} {
		if dir == "" {
			continue
		}
		if p := filepath.Join(dir, name); isExecutable(p) {
			return p, nil
		}
	}
	return exe, nil
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}
