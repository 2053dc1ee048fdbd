package blueprints

import (
	"path"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/nemoclave/nemoclave/policy"
)

// DefaultReadOnly and DefaultReadWrite are the filesystem of a policy
// without a filesystem block: the system directories an agent needs to
// run, read-only, and only the workspace and /tmp writable.
var (
	DefaultReadOnly  = []string{"/bin", "/etc", "/lib", "/lib64", "/sbin", "/usr"}
	DefaultReadWrite = []string{"/tmp", "/workspace"}
)

// MaxLandlockABI is the highest Landlock ABI a policy may require. Raise
// it when kernels ship a new ABI and the sandbox driver knows it.
const MaxLandlockABI = 7

var policySchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "presets"}, {Name: "unknown_hosts"}},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "filesystem"}, {Type: "network", LabelNames: []string{"name"}},
		{Type: "landlock"}, {Type: "process"},
	},
}

var filesystemSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "read_only"}, {Name: "read_write"}, {Name: "protected"}, {Name: "git_writable"},
}}
var landlockSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "min_abi"}, {Name: "best_effort"}}}
var processSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "max_open_files"}, {Name: "max_processes"}, {Name: "max_file_size_mb"}, {Name: "cpu_seconds"},
}}

// decodePolicies decodes every policy block and merges its presets.
func (e *evaluator) decodePolicies(presets map[string]*Preset) []*policy.Policy {
	out := []*policy.Policy{}
	for _, name := range sortedKeys(e.decl.policies) {
		if p := e.decodePolicy(e.decl.policies[name], presets); p != nil {
			out = append(out, p)
		}
	}
	return out
}

func (e *evaluator) decodePolicy(b *hcl.Block, presets map[string]*Preset) *policy.Policy {
	content, diags := e.expand(b.Body).Content(policySchema)
	e.diags = append(e.diags, diags...)
	if content == nil {
		return nil
	}
	before := len(e.diags)
	p := &policy.Policy{Name: b.Labels[0], Revision: 1, Network: []policy.NetworkRule{}, UnknownHosts: policy.UnknownDeny}
	p.UnknownHosts = policy.UnknownHosts(e.oneOf(content.Attributes["unknown_hosts"], string(policy.UnknownDeny), string(policy.UnknownAsk), string(policy.UnknownDeny)))
	m := newMerger(e)
	if a := content.Attributes["presets"]; a != nil {
		seen := map[string]bool{}
		for _, name := range e.strList(a) {
			pr, ok := presets[name]
			switch {
			case !ok:
				e.errorf(a.Expr.Range().Ptr(), "Unknown policy preset", "There is no preset %q%s. Builtin presets: %s. Add your own with --preset-dir (see docs/policies.md).", name, suggest(name, sortedKeys(presets)), strings.Join(builtinPresetNames(presets), ", "))
				continue
			case seen[name]:
				e.errorf(a.Expr.Range().Ptr(), "Duplicate preset", "Preset %q is listed twice.", name)
				continue
			}
			seen[name] = true
			p.Presets = append(p.Presets, name)
			for i, r := range pr.Network {
				m.add(r, pr.ranges[i], a.Expr.Range())
			}
		}
	}
	fsSeen, llSeen, procSeen := false, false, false
	for _, nb := range content.Blocks {
		switch nb.Type {
		case "filesystem":
			if fsSeen {
				e.errorf(nb.DefRange.Ptr(), "Duplicate filesystem block", "A policy has one filesystem block.")
				continue
			}
			fsSeen = true
			p.Filesystem = e.decodeFilesystem(nb)
		case "network":
			if !e.checkName(nb.Labels[0], nb.LabelRanges[0], "network") {
				continue
			}
			rule, ranges := e.decodeNetwork(nb, "blueprint")
			m.add(rule, ranges, nb.LabelRanges[0])
		case "landlock":
			if llSeen {
				e.errorf(nb.DefRange.Ptr(), "Duplicate landlock block", "A policy has one landlock block.")
				continue
			}
			llSeen = true
			c, diags := nb.Body.Content(landlockSchema)
			e.diags = append(e.diags, diags...)
			p.Landlock.MinABI = e.whole(c.Attributes["min_abi"])
			if a := c.Attributes["min_abi"]; a != nil && p.Landlock.MinABI > MaxLandlockABI {
				e.errorf(a.Expr.Range().Ptr(), "Unknown Landlock ABI", "min_abi = %d is above the newest ABI this nemoclave knows (%d).", p.Landlock.MinABI, MaxLandlockABI)
			}
			p.Landlock.BestEffort = e.boolean(c.Attributes["best_effort"])
		case "process":
			if procSeen {
				e.errorf(nb.DefRange.Ptr(), "Duplicate process block", "A policy has one process block.")
				continue
			}
			procSeen = true
			c, diags := nb.Body.Content(processSchema)
			e.diags = append(e.diags, diags...)
			p.Process = policy.Process{
				MaxOpenFiles: e.whole(c.Attributes["max_open_files"]), MaxProcesses: e.whole(c.Attributes["max_processes"]),
				MaxFileSizeMB: e.whole(c.Attributes["max_file_size_mb"]), CPUSeconds: e.whole(c.Attributes["cpu_seconds"]),
			}
		}
	}
	if !fsSeen {
		p.Filesystem = policy.Filesystem{
			ReadOnly:  append([]string{}, DefaultReadOnly...),
			ReadWrite: append([]string{}, DefaultReadWrite...),
		}
	}
	p.Network = m.rules
	if e.diags[before:].HasErrors() {
		return p
	}
	// Backstop: the enforcers refuse anything Validate refuses, so make
	// sure the evaluator never hands them such a policy.
	if err := p.Validate(); err != nil {
		e.errorf(b.DefRange.Ptr(), "Invalid policy", "policy %q: %v", p.Name, err)
	}
	return p
}

func (e *evaluator) decodeFilesystem(b *hcl.Block) policy.Filesystem {
	c, diags := b.Body.Content(filesystemSchema)
	e.diags = append(e.diags, diags...)
	fs := policy.Filesystem{ReadOnly: []string{}, ReadWrite: []string{}}
	fs.GitWritable = e.boolean(c.Attributes["git_writable"])
	seen := map[string]string{}
	for _, name := range []string{"read_only", "read_write", "protected"} {
		a := c.Attributes[name]
		for _, p := range e.strList(a) {
			clean := path.Clean(p)
			if name != "protected" && !path.IsAbs(p) {
				e.errorf(a.Expr.Range().Ptr(), "Relative filesystem path", "%s path %q must be absolute, as seen inside the sandbox (/workspace, /usr).", name, p)
				continue
			}
			if home := e.loader.opts.DaemonHome; name != "protected" && !policy.SandboxBuilt(clean) && policy.Exposes(clean, home) {
				e.errorf(a.Expr.Range().Ptr(), "Policy exposes the nemoclave home", "%s.", policy.HiddenMessage(clean, home))
				continue
			}
			if name == "read_write" && e.loader.opts.Root != "" && !policy.SandboxBuilt(clean) {
				e.errorf(a.Expr.Range().Ptr(), "Writable host path in an upload", "read_write path %q would let the sandbox write a directory of the daemon's host, which an uploaded (remote) blueprint may not grant; it may write /workspace and /tmp, which the sandbox builds. Keep data in the workspace.", p)
				continue
			}
			if name == "read_only" && e.loader.opts.Root != "" && !policy.SandboxBuilt(clean) && !uploadReadable(clean) {
				e.errorf(a.Expr.Range().Ptr(), "Host path in an upload", "read_only path %q would let the sandbox read a directory of the daemon's host, which an uploaded (remote) blueprint may not grant; it may read the system directories %s (and the workspace it uploads). Put the data in the upload.", p, strings.Join(uploadReadableDirs, ", "))
				continue
			}
			if prev, ok := seen[clean]; ok {
				e.errorf(a.Expr.Range().Ptr(), "Path listed twice", "%q is already in %s; a path has one access mode (protected paths inside a read_write root are how to carve out exceptions).", p, prev)
				continue
			}
			seen[clean] = name
			switch name {
			case "read_only":
				fs.ReadOnly = append(fs.ReadOnly, clean)
			case "read_write":
				fs.ReadWrite = append(fs.ReadWrite, clean)
			default:
				fs.Protected = append(fs.Protected, clean)
			}
		}
	}
	return fs
}

// merger combines network rules from presets and network blocks by key:
// rules by name, endpoints by host and port. The same key with a
// different treatment is a conflict, reported where the second one was
// brought in.
type merger struct {
	e         *evaluator
	rules     []policy.NetworkRule
	ruleFrom  map[string]string
	ruleAt    map[string]hcl.Range
	endpoints map[string]endpointRange
}

func newMerger(e *evaluator) *merger {
	return &merger{e: e, rules: []policy.NetworkRule{}, ruleFrom: map[string]string{}, ruleAt: map[string]hcl.Range{}, endpoints: map[string]endpointRange{}}
}

func (m *merger) add(r policy.NetworkRule, ranges []endpointRange, at hcl.Range) {
	if prev, ok := m.ruleFrom[r.Name]; ok {
		if prev == describeSource(r.Source) && r.Source == "blueprint" {
			m.e.errorf(at.Ptr(), "Duplicate network block", "network %q is already declared at %s; merge the endpoints into one block or rename this one.", r.Name, m.ruleAt[r.Name])
			return
		}
		m.e.errorf(at.Ptr(), "Conflicting network rules", "network %q comes from both %s and %s. Rule names are keys: rename the network block, or drop one of the presets.", r.Name, prev, describeSource(r.Source))
		return
	}
	m.ruleFrom[r.Name] = describeSource(r.Source)
	m.ruleAt[r.Name] = at
	for _, er := range ranges {
		for _, key := range endpointKeys(er.endpoint) {
			prev, ok := m.endpoints[key]
			if !ok {
				m.endpoints[key] = er
				continue
			}
			if !sameTreatment(prev.endpoint, er.endpoint) {
				m.e.errorf(at.Ptr(), "Conflicting endpoint rules", "%s is allowed by network %q (%s, %s) and by network %q (%s) with different settings (inspect, allow/deny rules, allow_private or allow_opaque). The gateway applies one treatment per host and port: make them agree, or remove one.", key, prev.rule, describeSource(prev.source), prev.rng, er.rule, describeSource(er.source))
			}
		}
	}
	m.rules = append(m.rules, r)
}

func describeSource(s string) string {
	if strings.HasPrefix(s, "preset:") {
		return "preset " + strings.TrimPrefix(s, "preset:")
	}
	return "this policy"
}

// uploadReadableDirs are the host directories an uploaded (remote)
// blueprint may give its sandbox to read: the system's programs, libraries
// and configuration, which every example reads. Anything else of the daemon's
// host (home directories, /var, /srv, /root) is for blueprints the host's own
// users run.
var uploadReadableDirs = []string{"/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc", "/opt"}

func uploadReadable(p string) bool {
	for _, d := range uploadReadableDirs {
		if p == d || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}
