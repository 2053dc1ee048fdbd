package blueprints

import (
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// evalLocals evaluates every local value after the locals it depends on.
// A cycle is one diagnostic naming every local in it, with their ranges.
func (e *evaluator) evalLocals() {
	const (
		unvisited = iota
		visiting
		done
	)
	state := map[string]int{}
	var stack []string
	var visit func(name string)
	visit = func(name string) {
		switch state[name] {
		case done:
			return
		case visiting:
			e.reportLocalCycle(name, stack)
			return
		}
		state[name] = visiting
		stack = append(stack, name)
		attr := e.decl.locals[name]
		for _, dep := range localDeps(attr.Expr) {
			if _, ok := e.decl.locals[dep]; ok {
				visit(dep)
			}
		}
		stack = stack[:len(stack)-1]
		if state[name] == done { // marked by a cycle report
			return
		}
		state[name] = done
		ctx := e.evalContext(scopeGeneral, allRoots...)
		v, ok := e.evalExpr(attr.Expr, ctx, allRoots)
		if ok && !e.noCredential(v, attr.Expr.Range()) {
			ok = false
		}
		if !ok {
			v = cty.DynamicVal
		}
		e.locals[name] = v
	}
	for _, name := range sortedKeys(e.decl.locals) {
		// Unevaluated locals are unknown, so a reference to one inside a
		// cycle does not add "unsupported attribute" noise.
		e.locals[name] = cty.DynamicVal
	}
	for _, name := range sortedKeys(e.decl.locals) {
		visit(name)
	}
}

func localDeps(expr hcl.Expression) []string {
	var out []string
	for _, t := range expr.Variables() {
		if t.RootName() != rootLocal || len(t) < 2 {
			continue
		}
		if a, ok := t[1].(hcl.TraverseAttr); ok {
			out = append(out, a.Name)
		}
	}
	return out
}

// reportLocalCycle reports the cycle that closes at name; stack is the
// current visiting path.
func (e *evaluator) reportLocalCycle(name string, stack []string) {
	start := 0
	for i, s := range stack {
		if s == name {
			start = i
		}
	}
	cycle := append(append([]string{}, stack[start:]...), name)
	var parts []string
	for _, n := range cycle[:len(cycle)-1] {
		a := e.decl.locals[n]
		parts = append(parts, fmt.Sprintf("local.%s (%s)", n, a.NameRange))
	}
	parts = append(parts, "local."+name)
	first := e.decl.locals[cycle[0]]
	e.diags = append(e.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "Cycle in local values",
		Detail:   fmt.Sprintf("These local values depend on each other, so none can be evaluated: %s. Break the cycle by computing one of them from variables or literals only.", strings.Join(parts, " → ")),
		Subject:  first.Expr.Range().Ptr(),
		Context:  hcl.RangeBetween(first.NameRange, first.Expr.Range()).Ptr(),
	})
}
