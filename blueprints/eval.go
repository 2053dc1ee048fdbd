package blueprints

import (
	"context"
	"fmt"
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/dynblock"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// rootSchema is the top level of a blueprint. Anything else is an error.
var rootSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "nemoclave"},
		{Type: "variable", LabelNames: []string{"name"}},
		{Type: "locals"},
		{Type: "plugin", LabelNames: []string{"kind", "name"}},
		{Type: "inference"},
		{Type: "policy", LabelNames: []string{"name"}},
		{Type: "sandbox", LabelNames: []string{"name"}},
		{Type: "agent", LabelNames: []string{"name"}},
	},
}

// PluginKinds are the plugin kinds a blueprint may declare.
var PluginKinds = []string{"llm", "embeddings", "retrieval", "memory", "tools", "dataproc"}

// declarations indexes the top-level blocks by name, so references can be
// checked before anything is evaluated.
type declarations struct {
	nemoclave []*hcl.Block
	variables map[string]*hcl.Block
	locals    map[string]*hcl.Attribute
	plugins   map[string]map[string]*hcl.Block // kind → name → block
	inference []*hcl.Block
	policies  map[string]*hcl.Block
	sandboxes map[string]*hcl.Block
	agents    map[string]*hcl.Block
	// localBlocks are kept for their ranges.
	localBlocks []*hcl.Block
}

// evaluator carries one evaluation. Diagnostics accumulate in diags so
// every problem is reported, not only the first.
type evaluator struct {
	ctx    context.Context
	loader *Loader
	dir    string
	decl   *declarations
	vars   map[string]cty.Value
	locals map[string]cty.Value
	diags  hcl.Diagnostics
	// literalOnly is set while decoding presets: no references at all.
	literalOnly bool
	// generalCtx is built once variables and locals are final.
	generalCtx *hcl.EvalContext
	// credentialErrs are the Host's answers by credential name, so the
	// store is asked once a name however often the blueprint uses it.
	credentialErrs map[string]error
	// settings is the nemoclave block, decoded first.
	settings Settings
}

// expand returns body with its dynamic blocks expanded (ext/dynblock), so
// platform teams can generate repeated blocks (endpoints, models,
// subagents) from variables:
//
//	dynamic "endpoint" {
//	  for_each = var.api_hosts
//	  content {
//	    host = endpoint.value
//	  }
//	}
//
// Nested bodies of an expanded body are expanded too. for_each may not
// carry a credential.
func (e *evaluator) expand(body hcl.Body) hcl.Body {
	return dynblock.Expand(body, e.general(), dynblock.OptCheckForEach(func(v cty.Value, expr hcl.Expression, _ *hcl.EvalContext) hcl.Diagnostics {
		if v.HasMarkDeep(markCredential) {
			return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "credential() not allowed here", Detail: "A dynamic block's for_each cannot iterate over credentials.", Subject: expr.Range().Ptr()}}
		}
		return nil
	}))
}

// general is the context of every block after locals: all references,
// functions except env().
func (e *evaluator) general() *hcl.EvalContext {
	if e.literalOnly {
		return e.evalContext(scopeGeneral)
	}
	if e.generalCtx == nil {
		e.generalCtx = e.evalContext(scopeGeneral, allRoots...)
	}
	return e.generalCtx
}

func newEvaluator(ctx context.Context, l *Loader, dir string) *evaluator {
	return &evaluator{
		ctx: ctx, loader: l, dir: dir,
		vars: map[string]cty.Value{}, locals: map[string]cty.Value{},
	}
}

func (e *evaluator) errorf(rng *hcl.Range, summary, format string, args ...any) {
	e.diags = append(e.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError, Summary: summary, Detail: fmt.Sprintf(format, args...), Subject: rng,
	})
}

func (e *evaluator) warnf(rng *hcl.Range, summary, format string, args ...any) {
	e.diags = append(e.diags, &hcl.Diagnostic{
		Severity: hcl.DiagWarning, Summary: summary, Detail: fmt.Sprintf(format, args...), Subject: rng,
	})
}

// run evaluates the parsed files in dependency order: settings,
// variables, locals, then the blocks that may reference them.
func (e *evaluator) run(files []*hcl.File) *Blueprint {
	bp := &Blueprint{Dir: e.dir}
	body := hcl.MergeFiles(files)
	content, diags := body.Content(rootSchema)
	e.diags = append(e.diags, diags...)
	if content == nil {
		return bp
	}
	e.decl = e.declare(content.Blocks)
	bp.Settings = e.decodeSettings(e.decl.nemoclave)
	e.settings = bp.Settings
	e.checkRequiredPlugins(e.decl.nemoclave)
	bp.Variables = e.evalVariables()
	e.evalLocals()
	bp.Plugins = e.decodePlugins()
	e.checkWiringCycles(bp.Plugins)
	bp.Inference = e.decodeInference(bp)
	presets := e.loadPresets()
	bp.Policies = e.decodePolicies(presets)
	bp.Sandboxes = e.decodeSandboxes(bp)
	bp.Agents = e.decodeAgents(bp)
	return bp
}

// declare indexes blocks and reports duplicates and bad labels.
func (e *evaluator) declare(blocks hcl.Blocks) *declarations {
	d := &declarations{
		variables: map[string]*hcl.Block{}, locals: map[string]*hcl.Attribute{},
		plugins:  map[string]map[string]*hcl.Block{},
		policies: map[string]*hcl.Block{}, sandboxes: map[string]*hcl.Block{}, agents: map[string]*hcl.Block{},
	}
	for _, k := range PluginKinds {
		d.plugins[k] = map[string]*hcl.Block{}
	}
	named := func(m map[string]*hcl.Block, b *hcl.Block, what string) {
		name := b.Labels[0]
		if !e.checkName(name, b.LabelRanges[0], what) {
			return
		}
		if prev, ok := m[name]; ok {
			e.errorf(b.LabelRanges[0].Ptr(), "Duplicate "+what, "A %s named %q is already declared at %s. Names must be unique within a blueprint (across all its files).", what, name, prev.DefRange)
			return
		}
		m[name] = b
	}
	for _, b := range blocks {
		switch b.Type {
		case "nemoclave":
			d.nemoclave = append(d.nemoclave, b)
		case "variable":
			named(d.variables, b, "variable")
		case "locals":
			d.localBlocks = append(d.localBlocks, b)
			attrs, diags := b.Body.JustAttributes()
			e.diags = append(e.diags, diags...)
			for name, a := range attrs {
				if prev, ok := d.locals[name]; ok {
					e.errorf(a.NameRange.Ptr(), "Duplicate local value", "local.%s is already defined at %s.", name, prev.NameRange)
					continue
				}
				d.locals[name] = a
			}
		case "plugin":
			kind := b.Labels[0]
			m, ok := d.plugins[kind]
			if !ok {
				e.errorf(b.LabelRanges[0].Ptr(), "Unknown plugin kind", "%q is not a plugin kind%s. The kinds are %v.", kind, suggest(kind, PluginKinds), PluginKinds)
				continue
			}
			if !e.checkName(b.Labels[1], b.LabelRanges[1], "plugin") {
				continue
			}
			if prev, ok := m[b.Labels[1]]; ok {
				e.errorf(b.LabelRanges[1].Ptr(), "Duplicate plugin", "plugin %q %q is already declared at %s.", kind, b.Labels[1], prev.DefRange)
				continue
			}
			m[b.Labels[1]] = b
		case "inference":
			d.inference = append(d.inference, b)
		case "policy":
			named(d.policies, b, "policy")
		case "sandbox":
			named(d.sandboxes, b, "sandbox")
		case "agent":
			named(d.agents, b, "agent")
		}
	}
	if len(d.nemoclave) > 1 {
		e.errorf(d.nemoclave[1].DefRange.Ptr(), "Duplicate nemoclave block", "Only one nemoclave block is allowed; the first is at %s.", d.nemoclave[0].DefRange)
	}
	if len(d.inference) > 1 {
		e.errorf(d.inference[1].DefRange.Ptr(), "Duplicate inference block", "Only one inference block is allowed; the first is at %s. Put every model in it.", d.inference[0].DefRange)
	}
	return d
}

// checkName requires block labels to be identifiers, so they can be
// referenced (policy.<name>).
func (e *evaluator) checkName(name string, rng hcl.Range, what string) bool {
	if !hclsyntax.ValidIdentifier(name) {
		e.errorf(rng.Ptr(), "Invalid "+what+" name", "%q is not a valid name: use letters, digits, underscores and dashes, starting with a letter.", name)
		return false
	}
	return true
}

// sortedKeys returns a map's keys in order, for stable diagnostics.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
