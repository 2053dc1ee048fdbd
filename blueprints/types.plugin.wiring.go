package blueprints

import (
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// LaunchOrder returns the plugins in an order where every plugin comes
// after the plugins its config refers to, so the host can start them one
// by one and hand each its wired targets. Ties keep kind-then-name order.
// An evaluated Blueprint has no wiring cycles (they are diagnostics).
func (b *Blueprint) LaunchOrder() []*Plugin {
	byAddr := map[string]*Plugin{}
	for _, p := range b.Plugins {
		byAddr[p.Address] = p
	}
	var out []*Plugin
	done := map[string]bool{}
	var visit func(p *Plugin)
	visit = func(p *Plugin) {
		if done[p.Address] {
			return
		}
		done[p.Address] = true
		for _, w := range p.Wiring {
			if t := byAddr["plugin."+w.Kind+"."+w.Name]; t != nil {
				visit(t)
			}
		}
		out = append(out, p)
	}
	for _, p := range b.Plugins {
		visit(p)
	}
	return out
}

// checkWiringCycles reports plugins whose config references lead back to
// themselves: none of them could be started first.
func (e *evaluator) checkWiringCycles(plugins []*Plugin) {
	byAddr := map[string]*Plugin{}
	for _, p := range plugins {
		byAddr[p.Address] = p
	}
	const (
		visiting = 1
		done     = 2
	)
	state := map[string]int{}
	var stack []string
	var visit func(p *Plugin) bool
	visit = func(p *Plugin) bool {
		switch state[p.Address] {
		case done:
			return true
		case visiting:
			start := 0
			for i, a := range stack {
				if a == p.Address {
					start = i
				}
			}
			cycle := append(append([]string{}, stack[start:]...), p.Address)
			e.diags = append(e.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Plugin wiring cycle",
				Detail:   fmt.Sprintf("These plugins refer to each other through their config, so none can be started first: %s. Remove one of the references.", strings.Join(cycle, " → ")),
				Subject:  byAddr[cycle[0]].DeclRange.Ptr(),
			})
			return false
		}
		state[p.Address] = visiting
		stack = append(stack, p.Address)
		ok := true
		for _, w := range p.Wiring {
			if t := byAddr["plugin."+w.Kind+"."+w.Name]; t != nil && ok {
				ok = visit(t)
			}
		}
		stack = stack[:len(stack)-1]
		state[p.Address] = done
		return ok
	}
	for _, p := range plugins {
		if !visit(p) {
			return
		}
	}
}
