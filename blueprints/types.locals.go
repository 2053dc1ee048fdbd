package blueprints

import (
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// evalWithAllLocals gives each local the context of every local, as
// evaluation was before localContext (quadratic in their number). Only
// BenchmarkChainedLocals sets it, to compare the two side by side.
var evalWithAllLocals = false

// evalLocals evaluates every local value after the locals it depends on.
// A cycle is one diagnostic naming every local in it, with their ranges.
func (e *evaluator) evalLocals() {
	if n := len(e.decl.locals); n > MaxLocals {
		first := e.decl.localBlocks[0]
		e.errorf(first.DefRange.Ptr(), "Too many local values",
			"This blueprint declares %d local values; at most %d are allowed. Move tables of data into a variable (a map) or a file read with file() or jsondecode(file(...)).", n, MaxLocals)
		for name := range e.decl.locals {
			e.locals[name] = cty.DynamicVal
		}
		return
	}
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
		ctx := e.localContext(attr.Expr)
		if evalWithAllLocals {
			ctx = e.evalContext(scopeGeneral, allRoots...)
		}
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

// localContext is the general context for one local's expression, its
// local object holding only the locals the expression names: building the
// object of every local for each one made evaluation quadratic in their
// number (3,000 locals took seconds).
func (e *evaluator) localContext(expr hcl.Expression) *hcl.EvalContext {
	roots := make([]string, 0, len(allRoots))
	for _, r := range allRoots {
		if r != rootLocal {
			roots = append(roots, r)
		}
	}
	ctx := e.evalContext(scopeGeneral, roots...)
	sub := map[string]cty.Value{}
	for _, t := range expr.Variables() {
		if t.RootName() != rootLocal {
			continue
		}
		var attr hcl.TraverseAttr
		ok := false
		if len(t) >= 2 {
			attr, ok = t[1].(hcl.TraverseAttr)
		}
		if ok {
			if v, found := e.locals[attr.Name]; found {
				sub[attr.Name] = v
			}
		} else { // local as a whole or local["x"]: give it every local
			ctx.Variables[rootLocal] = cty.ObjectVal(e.locals)
			return ctx
		}
	}
	ctx.Variables[rootLocal] = cty.ObjectVal(sub)
	return ctx
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
