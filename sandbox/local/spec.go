package local

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/nemoclave/nemoclave/sandbox"
	"github.com/nemoclave/nemoclave/sandbox/confine"
)

// Defaults applied when a Resources field is zero.
const (
	DefaultMemoryBytes = confine.DefaultMemoryBytes
	DefaultPids        = confine.DefaultPids
	DefaultCPUs        = confine.DefaultCPUs
	// DefaultMinLandlockABI is confine.DefaultMinLandlockABI.
	DefaultMinLandlockABI = confine.DefaultMinLandlockABI
	// sandboxWorkspace is where Spec.Workspace appears inside the sandbox.
	sandboxWorkspace = "/workspace"
	sandboxPath      = binaryDir + ":/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"
	// binaryDir holds the nemoclave binary inside every sandbox. It is
	// not a host path: wherever the binary lives on the host (a checkout
	// under /tmp, a home directory the agent's uid cannot traverse), the
	// sandbox sees it here, first on PATH, read-only.
	binaryDir = "/opt/nemoclave/bin"
)

// validateSpec refuses anything the driver could not enforce. It runs in
// Create, so an invalid sandbox never leaves a process or a cgroup behind.
func validateSpec(spec *sandbox.Spec) error {
	if len(spec.DriverConfig) > 0 {
		return errors.New("driver settings (a kubernetes {} block) were given to the local driver, which takes none; remove the block or set driver = \"kubernetes\"")
	}
	var errs []error
	if err := sandbox.ValidName(spec.Name); err != nil {
		errs = append(errs, err)
	}
	if len(spec.Command) == 0 || spec.Command[0] == "" {
		errs = append(errs, errors.New("no agent command: set the agent's command"))
	}
	if spec.Policy == nil {
		errs = append(errs, errors.New("no policy: a sandbox never starts without an explicit policy block"))
	} else if err := spec.Policy.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("invalid policy, the sandbox refuses to start: %w", err))
	}
	if spec.Workspace == "" || !filepath.IsAbs(spec.Workspace) {
		errs = append(errs, fmt.Errorf("workspace %q must be an absolute host path", spec.Workspace))
	} else if st, err := os.Stat(spec.Workspace); err != nil || !st.IsDir() {
		errs = append(errs, fmt.Errorf("workspace %q is not a directory on the host: create it first", spec.Workspace))
	}
	r := spec.Resources
	if r.CPUs < 0 || r.MemoryBytes < 0 || r.Pids < 0 {
		errs = append(errs, errors.New("resources must not be negative"))
	}
	if r.MemoryBytes > 0 && r.MemoryBytes < 16<<20 {
		errs = append(errs, fmt.Errorf("memory %d bytes is below the 16 MiB the sandbox itself needs", r.MemoryBytes))
	}
	seen := map[string]bool{}
	for _, l := range spec.Listeners {
		switch l.Name {
		case sandbox.ListenerEgress, sandbox.ListenerInference, sandbox.ListenerAgentAPI:
		default:
			errs = append(errs, fmt.Errorf("listener %q: the local driver knows %q, %q and %q", l.Name,
				sandbox.ListenerEgress, sandbox.ListenerInference, sandbox.ListenerAgentAPI))
		}
		if seen[l.Name] {
			errs = append(errs, fmt.Errorf("listener %q requested twice", l.Name))
		}
		seen[l.Name] = true
	}
	for k := range spec.Env {
		if err := confine.CheckEnvName(k); err != nil {
			errs = append(errs, err)
		}
	}
	if spec.Policy != nil {
		if _, err := protectedPaths(spec.Policy.Filesystem.EffectiveProtected()); err != nil {
			errs = append(errs, err)
		}
		for _, list := range [][]string{spec.Policy.Filesystem.ReadOnly, spec.Policy.Filesystem.ReadWrite} {
			for _, p := range list {
				if err := checkPolicyPath(p); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}

// protectedPaths turns the policy's protected list into clean
// workspace-relative paths. Absolute paths must lie under /workspace: the
// rest of the sandbox is read-only or tmpfs, so nothing else needs it.
func protectedPaths(list []string) ([]string, error) {
	var out []string
	for _, p := range list {
		rel := p
		if path.IsAbs(p) {
			r, ok := strings.CutPrefix(path.Clean(p), sandboxWorkspace+"/")
			if !ok {
				return nil, fmt.Errorf("protected path %q is outside %s; only workspace paths can be protected (everything else is already read-only or scratch)", p, sandboxWorkspace)
			}
			rel = r
		}
		rel = path.Clean(rel)
		if rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
			return nil, fmt.Errorf("protected path %q must name something inside the workspace", p)
		}
		out = append(out, rel)
	}
	sort.Strings(out)
	return out, nil
}

// listenerURLs maps each listener to the variables the agent sees.
func listenerEnv(ports map[string]int) []string {
	var env []string
	if p, ok := ports[sandbox.ListenerEgress]; ok {
		u := "http://127.0.0.1:" + strconv.Itoa(p)
		for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"} {
			env = append(env, k+"="+u, strings.ToLower(k)+"="+u)
		}
		env = append(env, "NO_PROXY=127.0.0.1,localhost,::1", "no_proxy=127.0.0.1,localhost,::1")
	}
	if p, ok := ports[sandbox.ListenerInference]; ok {
		u := "http://127.0.0.1:" + strconv.Itoa(p)
		env = append(env, "OPENAI_BASE_URL="+u+"/v1", "ANTHROPIC_BASE_URL="+u)
	}
	if p, ok := ports[sandbox.ListenerAgentAPI]; ok {
		u := "http://127.0.0.1:" + strconv.Itoa(p)
		env = append(env, "NEMOCLAVE_API_URL="+u+"/v1", "NEMOCLAVE_MCP_URL="+u+"/mcp")
	}
	return env
}

// sandboxEnv builds the agent's environment from scratch: nothing of the
// supervisor's environment is inherited.
func sandboxEnv(name string, extra map[string]string, ports map[string]int) []string {
	env := []string{
		"PATH=" + sandboxPath,
		"HOME=/tmp",
		"TMPDIR=/tmp",
		"LANG=C.UTF-8",
		"TERM=xterm-256color",
		"NEMOCLAVE_SANDBOX=" + name,
	}
	env = append(env, listenerEnv(ports)...)
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+extra[k])
	}
	return env
}
