package blueprints

import (
	"context"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// PluginChecker is implemented by a SchemaSource that knows what is
// installed and reads the project's lock file (the host's plugin manager).
// The evaluator asks it about every plugin that is not a builtin or an MCP
// import, and about every required_plugins entry, before asking for the
// plugin's schema: a plugin that is missing, of the wrong version, not
// locked or changed since it was locked is an error at validate, naming
// what is installed. Sources without a checker (the static fallback) skip
// these checks.
type PluginChecker interface {
	CheckPlugin(ctx context.Context, req PluginCheck) (*PluginPin, error)
}

// PluginCheck is one question to a PluginChecker.
type PluginCheck struct {
	// Kind is the block's kind label ("" for required_plugins entries).
	Kind string
	// Source is an installed address, or an absolute path.
	Source string
	// Constraint is the version constraint (the block's version and the
	// matching required_plugins entries, joined with ", ").
	Constraint string
	// Dir is the blueprint directory, where the lock file is.
	Dir string
}

// PluginPin is what the lock fixes for a plugin.
type PluginPin struct {
	// Source is what to ask for the plugin's schema and what the host
	// launches: the address with @version, or the absolute path.
	Source string `json:"source"`
	// Version is the locked version of an installed address.
	Version string `json:"version,omitempty"`
	// Hash is the locked hash (sha256:… or h1:…).
	Hash string `json:"hash,omitempty"`
	// DevOverride is the local binary used instead, unchecked.
	DevOverride string `json:"dev_override,omitempty"`
	// Warning is shown as a diagnostic (dev overrides).
	Warning string `json:"-"`
}

// schemaSource is what the evaluator asks the SchemaSource about for p.
func (p *Plugin) schemaSource() string {
	if p.Locked != nil {
		return p.Locked.Source
	}
	return p.Source
}

// constraintFor joins a block's own version constraint with the
// required_plugins entries for the same source.
func (e *evaluator) constraintFor(source, own string) string {
	var cs []string
	if own != "" {
		cs = append(cs, own)
	}
	for _, rp := range e.settings.RequiredPlugins {
		if rp.Version != "" && rp.Source == source {
			cs = append(cs, rp.Version)
		}
	}
	return strings.Join(cs, ", ")
}

// checkPlugin asks the checker about p; false means an error was reported
// and the config cannot be checked.
func (e *evaluator) checkPlugin(p *Plugin, rng hcl.Range) bool {
	c, ok := e.loader.opts.Schemas.(PluginChecker)
	if !ok || (p.SourceType != SourceInstalled && p.SourceType != SourcePath) {
		return true
	}
	src := p.Source
	if p.SourceType == SourcePath {
		src = p.Path
	}
	pin, err := c.CheckPlugin(e.ctx, PluginCheck{Kind: p.Kind, Source: src, Constraint: e.constraintFor(p.Source, p.Version), Dir: e.dir})
	if err != nil {
		e.errorf(rng.Ptr(), "Plugin not usable", "%s: %v", p.Address, err)
		return false
	}
	if pin.Warning != "" {
		e.warnf(rng.Ptr(), "Plugin dev override in effect", "%s: %s", p.Address, pin.Warning)
	}
	p.Locked = pin
	return true
}

// checkRequiredPlugins checks every required_plugins entry: each must be
// installed in a version that satisfies its constraint and be locked.
func (e *evaluator) checkRequiredPlugins(blocks []*hcl.Block) {
	c, ok := e.loader.opts.Schemas.(PluginChecker)
	if !ok || len(blocks) == 0 {
		return
	}
	rng := blocks[0].DefRange
	for _, rp := range e.settings.RequiredPlugins {
		src := rp.Source
		if !strings.Contains(src, "/") || strings.HasPrefix(src, "builtin/") {
			continue // syntax errors were reported when decoding
		}
		if strings.HasPrefix(src, "./") || strings.HasPrefix(src, "../") {
			src = e.dir + "/" + src
		}
		if _, err := c.CheckPlugin(e.ctx, PluginCheck{Source: src, Constraint: e.constraintFor(rp.Source, ""), Dir: e.dir}); err != nil {
			e.errorf(rng.Ptr(), "Required plugin not usable", "required_plugins.%s: %v", rp.Name, err)
		}
	}
}
