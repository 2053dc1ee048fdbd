package blueprints

import (
	"fmt"
	"os"
	"strings"

	"github.com/agext/levenshtein"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// Reference roots. Which ones an expression may use depends on where it
// sits (a variable default may use none of the block references).
const (
	rootVar     = "var"
	rootLocal   = "local"
	rootPlugin  = "plugin"
	rootPolicy  = "policy"
	rootSandbox = "sandbox"
	rootAgent   = "agent"
	// rootPath gives path.blueprint (the blueprint's directory, absolute)
	// and path.cwd, for config values plugins read as paths.
	rootPath = "path"
)

var allRoots = []string{rootVar, rootLocal, rootPlugin, rootPolicy, rootSandbox, rootAgent, rootPath}

// refValue is what a block reference (policy.base, plugin.llm.nim)
// evaluates to: an object naming its target. Decoders read the address
// back with refAddress; plugin configs receive it as JSON
// ({"address": "plugin.embeddings.local", "kind": "embeddings", "name": "local"}).
func refValue(address, kind, name string) cty.Value {
	attrs := map[string]cty.Value{"address": cty.StringVal(address), "name": cty.StringVal(name)}
	if kind != "" {
		attrs["kind"] = cty.StringVal(kind)
	}
	return cty.ObjectVal(attrs)
}

// refAddress returns the address of a block reference value.
func refAddress(v cty.Value) (string, bool) {
	v, _ = v.UnmarkDeep()
	if !v.IsKnown() || v.IsNull() || !v.Type().IsObjectType() || !v.Type().HasAttribute("address") || !v.Type().HasAttribute("name") {
		return "", false
	}
	a := v.GetAttr("address")
	if !a.IsKnown() || a.IsNull() || a.Type() != cty.String {
		return "", false
	}
	return a.AsString(), true
}

// evalContext builds the context for expressions that may use roots.
// Variables and locals appear as far as they are evaluated; block
// references are always known, since they are just names.
func (e *evaluator) evalContext(scope functionScope, roots ...string) *hcl.EvalContext {
	vars := map[string]cty.Value{}
	for _, r := range roots {
		switch r {
		case rootVar:
			vars[r] = cty.ObjectVal(e.vars)
		case rootLocal:
			vars[r] = cty.ObjectVal(e.locals)
		case rootPlugin:
			kinds := map[string]cty.Value{}
			for _, k := range PluginKinds {
				names := map[string]cty.Value{}
				for n := range e.decl.plugins[k] {
					names[n] = refValue("plugin."+k+"."+n, k, n)
				}
				kinds[k] = cty.ObjectVal(names)
			}
			vars[r] = cty.ObjectVal(kinds)
		case rootPath:
			cwd, _ := os.Getwd()
			if e.loader.opts.Root != "" {
				// An upload has no working directory of its caller's; the
				// daemon's is none of its business.
				cwd = e.dir
			}
			vars[r] = cty.ObjectVal(map[string]cty.Value{"blueprint": cty.StringVal(e.dir), "cwd": cty.StringVal(cwd)})
		case rootPolicy, rootSandbox, rootAgent:
			names := map[string]cty.Value{}
			for n := range e.blocksOf(r) {
				names[n] = refValue(r+"."+n, "", n)
			}
			vars[r] = cty.ObjectVal(names)
		}
	}
	return &hcl.EvalContext{Variables: vars, Functions: functions(e.dir, e.loader.opts.Root, scope, e.loader.opts.LookupEnv)}
}

func (e *evaluator) blocksOf(root string) map[string]*hcl.Block {
	switch root {
	case rootPolicy:
		return e.decl.policies
	case rootSandbox:
		return e.decl.sandboxes
	case rootAgent:
		return e.decl.agents
	}
	return nil
}

// checkTraversals reports every reference whose target does not exist, at
// the reference's own range. It returns false when any was reported, so
// the caller skips evaluation instead of repeating the error.
func (e *evaluator) checkTraversals(travs []hcl.Traversal, roots []string) bool {
	ok := true
	for _, t := range travs {
		if d := e.checkTraversal(t, roots); d != nil {
			e.diags = append(e.diags, d)
			ok = false
		}
	}
	return ok
}

func (e *evaluator) checkTraversal(t hcl.Traversal, roots []string) *hcl.Diagnostic {
	root := t.RootName()
	rng := t.SourceRange()
	diag := func(summary, detail string, args ...any) *hcl.Diagnostic {
		return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: fmt.Sprintf(detail, args...), Subject: &rng}
	}
	allowed := false
	for _, r := range roots {
		allowed = allowed || r == root
	}
	if !allowed {
		known := false
		for _, r := range allRoots {
			known = known || r == root
		}
		if known {
			return diag("Reference not allowed here", "%s.<name> cannot be used here; this expression may use %s.", root, describeRoots(roots))
		}
		return diag("Unknown reference", "There is nothing called %q in a blueprint%s. References here look like %s.", root, suggest(root, allRoots), describeRoots(roots))
	}
	step := func(i int) (string, bool) {
		if len(t) <= i {
			return "", false
		}
		switch s := t[i].(type) {
		case hcl.TraverseAttr:
			return s.Name, true
		case hcl.TraverseIndex:
			if s.Key.Type() == cty.String && s.Key.IsKnown() && !s.Key.IsNull() {
				return s.Key.AsString(), true
			}
		}
		return "", false
	}
	name, ok := step(1)
	if !ok {
		return diag("Incomplete reference", "%s must be followed by a name, as in %s.<name>.", root, root)
	}
	switch root {
	case rootPath:
		if name != "blueprint" && name != "cwd" {
			return diag("Unknown path attribute", "path.%s does not exist%s; use path.blueprint (the blueprint's directory) or path.cwd.", name, suggest(name, []string{"blueprint", "cwd"}))
		}
	case rootVar:
		if _, ok := e.decl.variables[name]; !ok {
			return diag("Reference to undeclared variable", "There is no variable %q%s. Declare it with a variable %q block.", name, suggest(name, sortedKeys(e.decl.variables)), name)
		}
	case rootLocal:
		if _, ok := e.decl.locals[name]; !ok {
			return diag("Reference to undeclared local value", "There is no local.%s%s. Define it in a locals block.", name, suggest(name, sortedKeys(e.decl.locals)))
		}
	case rootPlugin:
		plugins, ok := e.decl.plugins[name]
		if !ok {
			return diag("Unknown plugin kind", "%q is not a plugin kind%s; references look like plugin.<kind>.<name> with kind one of %v.", name, suggest(name, PluginKinds), PluginKinds)
		}
		// plugin.<kind> alone is the object of every plugin of that kind
		// (tools = values(plugin.tools)).
		if pname, ok := step(2); ok {
			if _, ok := plugins[pname]; !ok {
				return diag("Reference to undeclared plugin", "There is no plugin %q %q%s. Declare it with a plugin %q %q block.", name, pname, suggest(pname, sortedKeys(plugins)), name, pname)
			}
		}
	default:
		blocks := e.blocksOf(root)
		if _, ok := blocks[name]; !ok {
			return diag("Reference to undeclared "+root, "There is no %s %q%s. Declare it with a %s %q block.", root, name, suggest(name, sortedKeys(blocks)), root, name)
		}
	}
	return nil
}

func describeRoots(roots []string) string {
	if len(roots) == 0 {
		return "no references at all (only literals and functions)"
	}
	parts := make([]string, len(roots))
	for i, r := range roots {
		parts[i] = r + ".<name>"
	}
	return strings.Join(parts, ", ")
}

// suggest returns ` (did you mean "x"?)` when a known name is close.
func suggest(given string, known []string) string {
	best, bestDist := "", 3
	for _, k := range known {
		if d := levenshtein.Distance(given, k, nil); d < bestDist {
			best, bestDist = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}
