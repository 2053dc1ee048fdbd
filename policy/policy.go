package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
)

// UnknownHosts says what the egress gateway does with a host no rule names.
type UnknownHosts string

const (
	// UnknownDeny refuses the request with 403 and an audit event.
	UnknownDeny UnknownHosts = "deny"
	// UnknownAsk holds the request until an operator answers or the
	// approval timeout passes (then 403).
	UnknownAsk UnknownHosts = "ask"
)

// Policy is the effective policy of one sandbox. The zero value is not a
// valid policy: Validate refuses it, so a missing policy can never mean
// "allow everything".
type Policy struct {
	// Name is the blueprint's policy block name.
	Name string `json:"name"`
	// Revision increases by one for every change (hot reload, persisted
	// approval). Enforcers log it with every decision.
	Revision int `json:"revision"`
	// Presets lists the presets merged into Network, in order, for display.
	Presets []string `json:"presets,omitempty"`

	Filesystem Filesystem `json:"filesystem"`
	// Network is the egress allow list. Empty means no network at all.
	Network      []NetworkRule `json:"network"`
	UnknownHosts UnknownHosts  `json:"unknown_hosts"`
	Landlock     Landlock      `json:"landlock"`
	Process      Process       `json:"process"`
}

// Filesystem lists paths as seen inside the sandbox. Everything not listed
// is invisible or read-only according to the driver's base view.
type Filesystem struct {
	// ReadOnly paths may be read and executed, never written.
	ReadOnly []string `json:"read_only"`
	// ReadWrite paths may be read and written (workspace, /tmp).
	ReadWrite []string `json:"read_write"`
	// Protected paths stay read-only even when under a ReadWrite root
	// (".git/hooks", ".bashrc"). Relative paths are relative to the
	// workspace; a protected path that does not exist yet may not be created.
	Protected []string `json:"protected,omitempty"`
	// GitWritable opts an agent that commits out of the read-only
	// workspace .git: only the git paths that hold configuration or code
	// (GitConfigPaths) stay protected. See EffectiveProtected.
	GitWritable bool `json:"git_writable,omitempty"`
}

// GitConfigPaths are the workspace git paths a host-side git reads as
// configuration or runs as code: config (and the includes it names),
// commondir (which would move all of them elsewhere; the sandbox driver's
// placeholder holds "." so git keeps working), hooks, info/ (attributes,
// exclude, sparse-checkout), modules/*/config of absorbed submodules and
// worktrees/*. They stay protected even when GitWritable is set. The index
// cannot be on this list, since committing writes it, and a gitlink added
// to it makes a host git status recurse into a nested repository the agent
// configured: that residual risk is why .git is read-only unless a policy
// opts in.
var GitConfigPaths = []string{".git/commondir", ".git/config", ".git/hooks", ".git/info", ".git/modules", ".git/worktrees"}

// EffectiveProtected is the protected list every enforcer applies (the
// sandbox driver and the gateway's file tools alike): the policy's own
// entries, clean and workspace-relative, plus the workspace's git
// metadata — the whole .git, or GitConfigPaths when GitWritable. A later
// host-side git in the workspace must never read configuration or hooks
// the agent wrote (F17). Entries covered by another entry are dropped.
func (f Filesystem) EffectiveProtected() []string {
	all := []string{".git"}
	if f.GitWritable {
		all = append([]string(nil), GitConfigPaths...)
	}
	for _, p := range f.Protected {
		if path.IsAbs(p) {
			r, ok := strings.CutPrefix(path.Clean(p), "/workspace/")
			if !ok {
				all = append(all, p) // the driver reports it as outside the workspace
				continue
			}
			p = r
		}
		all = append(all, path.Clean(p))
	}
	sort.Strings(all)
	var out []string
	for _, p := range all {
		if n := len(out); n > 0 && (out[n-1] == p || strings.HasPrefix(p, out[n-1]+"/")) {
			continue
		}
		out = append(out, p)
	}
	return out
}

// Landlock configures how strictly the sandbox applies Landlock.
type Landlock struct {
	// MinABI is the lowest Landlock ABI the sandbox accepts; below it the
	// sandbox refuses to start. Zero means the driver's default.
	MinABI int `json:"min_abi"`
	// BestEffort downgrades silently on older kernels. Only true when the
	// policy explicitly opted in; never the default.
	BestEffort bool `json:"best_effort,omitempty"`
}

// Process holds per-process limits applied as rlimits inside the sandbox.
// Zero means the driver's default.
type Process struct {
	MaxOpenFiles  int `json:"max_open_files,omitempty"`
	MaxProcesses  int `json:"max_processes,omitempty"`
	MaxFileSizeMB int `json:"max_file_size_mb,omitempty"`
	// CPUSeconds caps CPU time per process (RLIMIT_CPU).
	CPUSeconds int `json:"cpu_seconds,omitempty"`
}

// NetworkRule is a named group of endpoints (a blueprint network block or a
// preset). Source says where it came from, for policy get --full.
type NetworkRule struct {
	Name      string     `json:"name"`
	Source    string     `json:"source,omitempty"` // "blueprint", "preset:<name>", "approval"
	Endpoints []Endpoint `json:"endpoints"`
}

// Endpoint allows traffic to hosts matching Host on the listed ports.
type Endpoint struct {
	// Host is an exact name ("api.github.com"), a label wildcard
	// ("*.githubusercontent.com": one or more labels, never the apex), or
	// an IP literal. A bare "*" is invalid.
	Host string `json:"host"`
	// Ports allowed; empty means 443.
	Ports []int `json:"ports,omitempty"`
	// Inspect terminates TLS with the sandbox CA so Allow/Deny can judge
	// method, path and query.
	Inspect bool `json:"inspect,omitempty"`
	// AllowPrivate permits resolved addresses in private ranges (for an
	// in-house service). Loopback, link-local and metadata stay denied.
	AllowPrivate bool `json:"allow_private,omitempty"`
	// AllowOpaque permits non-TLS bytes or a missing SNI in a CONNECT tunnel.
	AllowOpaque bool `json:"allow_opaque,omitempty"`
	// Allow rules; when Inspect is set and Allow is empty, every request
	// not denied is allowed. Deny wins over Allow.
	Allow []HTTPRule `json:"allow,omitempty"`
	Deny  []HTTPRule `json:"deny,omitempty"`
}

// HTTPRule matches an inspected request. Empty fields match anything.
type HTTPRule struct {
	// Methods in upper case.
	Methods []string `json:"methods,omitempty"`
	// Paths are glob patterns on the normalised path: "*" matches within one
	// segment, "**" matches any number of segments.
	Paths []string `json:"paths,omitempty"`
	// Query maps a parameter name to allowed values ("*" for any value).
	Query map[string][]string `json:"query,omitempty"`
}

// EffectivePorts returns the endpoint's ports, defaulting to 443.
func (e Endpoint) EffectivePorts() []int {
	if len(e.Ports) == 0 {
		return []int{443}
	}
	return e.Ports
}

// Validate reports every structural problem at once. A policy that fails
// validation must not be enforced: callers refuse to start the sandbox.
func (p *Policy) Validate() error {
	if p == nil {
		return errors.New("policy: no policy given; every sandbox needs a policy block (see docs/policies.md)")
	}
	var errs []error
	if p.Name == "" {
		errs = append(errs, errors.New("policy has no name"))
	}
	switch p.UnknownHosts {
	case UnknownDeny, UnknownAsk:
	default:
		errs = append(errs, fmt.Errorf("unknown_hosts = %q: must be \"deny\" or \"ask\"", p.UnknownHosts))
	}
	if len(p.Filesystem.ReadOnly)+len(p.Filesystem.ReadWrite) == 0 {
		errs = append(errs, errors.New("filesystem: no read_only or read_write paths; the agent could not even load its own binary"))
	}
	for _, list := range [][]string{p.Filesystem.ReadOnly, p.Filesystem.ReadWrite} {
		for _, fp := range list {
			if !path.IsAbs(fp) {
				errs = append(errs, fmt.Errorf("filesystem path %q must be absolute", fp))
			}
		}
	}
	if p.Landlock.MinABI < 0 {
		errs = append(errs, fmt.Errorf("landlock min_abi %d is negative", p.Landlock.MinABI))
	}
	for _, r := range p.Network {
		for _, e := range r.Endpoints {
			if err := ValidateHostPattern(e.Host); err != nil {
				errs = append(errs, fmt.Errorf("network %q: %w", r.Name, err))
			}
			for _, port := range e.Ports {
				if port < 1 || port > 65535 {
					errs = append(errs, fmt.Errorf("network %q: host %q: port %d out of range 1-65535", r.Name, e.Host, port))
				}
			}
			if !e.Inspect && (len(e.Allow) > 0 || len(e.Deny) > 0) {
				errs = append(errs, fmt.Errorf("network %q: host %q has allow/deny rules but inspect is off; set inspect = true so method and path can be seen", r.Name, e.Host))
			}
		}
	}
	return errors.Join(errs...)
}

// ValidateHostPattern checks a host pattern: lower case, no bare or inner
// wildcard, no scheme, port or path.
func ValidateHostPattern(h string) error {
	switch {
	case h == "":
		return errors.New("empty host pattern")
	case h == "*" || h == "*.":
		return fmt.Errorf("host pattern %q would allow every host; name the hosts, or use *.example.com", h)
	case strings.ContainsAny(h, "/@ \t"):
		return fmt.Errorf("host pattern %q must be a bare host name, without scheme, path or userinfo", h)
	case strings.Contains(strings.TrimPrefix(h, "*."), "*"):
		return fmt.Errorf("host pattern %q: a wildcard is only allowed as the whole first label (*.example.com)", h)
	case h != strings.ToLower(h):
		return fmt.Errorf("host pattern %q must be lower case", h)
	}
	return nil
}

// Clone returns a deep copy, so enforcers can hold a revision while the
// control plane builds the next one.
func (p *Policy) Clone() *Policy {
	if p == nil {
		return nil
	}
	b, err := json.Marshal(p)
	if err != nil {
		panic(fmt.Sprintf("policy: marshal: %v", err)) // only plain data: cannot fail
	}
	var c Policy
	if err := json.Unmarshal(b, &c); err != nil {
		panic(fmt.Sprintf("policy: unmarshal: %v", err))
	}
	return &c
}

// Hosts returns every host pattern the network rules allow, sorted, for display.
func (p *Policy) Hosts() []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range p.Network {
		for _, e := range r.Endpoints {
			if !seen[e.Host] {
				seen[e.Host] = true
				out = append(out, e.Host)
			}
		}
	}
	sort.Strings(out)
	return out
}
