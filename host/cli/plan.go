package cli

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/nemoclave/nemoclave/blueprints"
	"github.com/nemoclave/nemoclave/policy"
	"github.com/spf13/cobra"
)

func newPlanCmd(g *Globals) *cobra.Command {
	var f blueprintFlags
	cmd := &cobra.Command{
		Use:   "plan <file|dir>",
		Short: "Show what a blueprint would run: plugins, model routes, effective policies, sandboxes, agents",
		Long: `Plan evaluates a blueprint like validate and prints what running it would
do: the plugins to launch and their (redacted) configs, the model routes, the
effective policy of every sandbox (presets merged), the sandboxes and the
agents. -o json prints the evaluated blueprint as JSON; each sandbox carries
its effective policy under "policy".`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			bp, err := f.load(cmd.Context(), g, cmd.ErrOrStderr(), args[0])
			if err != nil {
				return err
			}
			switch g.Output {
			case "table", "":
				return writePlan(cmd.OutOrStdout(), bp)
			case "json":
				// Not Render: constraints like ">= 0.1" must stay readable,
				// not become \u003e= 0.1.
				return writeJSON(cmd.OutOrStdout(), bp)
			}
			return Render(cmd.OutOrStdout(), g.Output, bp, nil)
		},
	}
	f.register(cmd)
	allowSingleDash(cmd, "var", "var-file", "preset-dir", "home", "output")
	return cmd
}

// writePlan prints the plan for people.
func writePlan(w io.Writer, bp *blueprints.Blueprint) error {
	p := &printer{w: w}
	if len(bp.Variables) > 0 {
		p.line(0, "Variables (%d):", len(bp.Variables))
		for _, v := range bp.Variables {
			p.line(1, "%s = %s  (%s)", v.Name, v.Value, v.Source)
		}
		p.line(0, "")
	}
	p.line(0, "Plugins to launch, in order (%d):", len(bp.Plugins))
	for _, pl := range bp.LaunchOrder() {
		src := pl.Source
		if pl.MCP != nil {
			if pl.MCP.URL != "" {
				src = "mcp " + pl.MCP.URL
			} else {
				src = "mcp " + strings.Join(pl.MCP.Command, " ")
			}
		}
		p.line(1, "%s  %s%s", pl.Address, src, optional(" version %s", pl.Version))
		if len(pl.DisplayConfig) > 0 && string(pl.DisplayConfig) != "{}" {
			p.line(2, "config: %s", pl.DisplayConfig)
		}
		for _, c := range pl.Credentials {
			p.line(2, "credential %s → %s (injected by the host at configure time)", c.Name, strings.Join(c.Path, "."))
		}
		for _, wire := range pl.Wiring {
			p.line(2, "wired: %s → plugin.%s.%s", strings.Join(wire.Path, "."), wire.Kind, wire.Name)
		}
	}
	if in := bp.Inference; in != nil {
		p.line(0, "")
		p.line(0, "Model routes (default %q):", in.Default)
		for _, m := range in.Models {
			p.line(1, "%s → plugin.llm.%s model %q%s", m.Alias, m.Provider, m.Model, optional(" fallback %s", strings.Join(m.Fallback, ", ")))
			if len(m.Parameters) > 0 {
				p.line(2, "parameters: %s", m.Parameters)
			}
		}
		if b := in.Budget; b != nil {
			p.line(1, "budget per sandbox: tokens/hour %s, tokens/day %s, tokens/month %s, USD/day %s, USD/month %s",
				limit(b.TokensPerHour), limit(b.TokensPerDay), limit(b.TokensPerMonth), money(b.CostPerDayUSD), money(b.CostPerMonthUSD))
		}
		if r := in.RateLimit; r != nil {
			p.line(1, "rate limit per sandbox: requests/min %s, tokens/min %s, concurrent %s",
				limit(int64(r.RequestsPerMinute)), limit(int64(r.TokensPerMinute)), limit(int64(r.Concurrent)))
		}
	}
	p.line(0, "")
	p.line(0, "Sandboxes (%d):", len(bp.Sandboxes))
	for _, s := range bp.Sandboxes {
		p.line(1, "%s  driver %s, workspace %s", s.Name, s.Driver, orDefault(s.Workspace, "(temporary)"))
		r := s.Resources
		p.line(2, "resources: cpus %s, memory %s, pids %s", orDefault(trimFloat(r.CPUs), "default"), orDefault(sizeString(r.MemoryBytes), "default"), limit(int64(r.PIDs)))
		for _, k := range sortedStrings(s.Environment) {
			p.line(2, "env %s=%s", k, s.Environment[k])
		}
		if k := s.Kubernetes; k != nil {
			p.line(2, "kubernetes: namespace %s, runtime_class %s, storage_class %s, storage %s",
				orDefault(k.Namespace, "default"), orDefault(k.RuntimeClass, "default"), orDefault(k.StorageClass, "default"), orDefault(sizeString(k.StorageBytes), "default"))
		}
		writePolicy(p, s.Policy)
	}
	p.line(0, "")
	p.line(0, "Agents (%d):", len(bp.Agents))
	for _, a := range bp.Agents {
		p.line(1, "%s  in sandbox %s: %s", a.Name, a.Sandbox, strings.Join(a.Command, " "))
		p.line(2, "model %s, tools [%s], memory %s, retrieval %s", orDefault(a.Model, "none"), strings.Join(a.Tools, ", "), orDefault(a.Memory, "none"), orDefault(a.Retrieval, "none"))
		for _, s := range a.Subagents {
			p.line(2, "subagent %s: model %s, tools [%s]", s.Name, orDefault(s.Model, "none"), strings.Join(s.Tools, ", "))
		}
	}
	return p.err
}

func writePolicy(p *printer, pol *policy.Policy) {
	if pol == nil {
		return
	}
	p.line(2, "effective policy %q (revision %d), presets [%s], unknown hosts: %s", pol.Name, pol.Revision, strings.Join(pol.Presets, ", "), pol.UnknownHosts)
	p.line(3, "read-only:  %s", strings.Join(pol.Filesystem.ReadOnly, " "))
	p.line(3, "read-write: %s", strings.Join(pol.Filesystem.ReadWrite, " "))
	if len(pol.Filesystem.Protected) > 0 {
		p.line(3, "protected:  %s", strings.Join(pol.Filesystem.Protected, " "))
	}
	ll := "driver default"
	if pol.Landlock.MinABI > 0 {
		ll = "ABI >= " + strconv.Itoa(pol.Landlock.MinABI)
	}
	if pol.Landlock.BestEffort {
		ll += ", best effort"
	}
	p.line(3, "landlock: %s", ll)
	if len(pol.Network) == 0 {
		p.line(3, "network: none")
	}
	for _, r := range pol.Network {
		p.line(3, "network %s (%s):", r.Name, orDefault(r.Source, "blueprint"))
		for _, e := range r.Endpoints {
			var ports []string
			for _, port := range e.EffectivePorts() {
				ports = append(ports, strconv.Itoa(port))
			}
			var flags []string
			if e.Inspect {
				flags = append(flags, "inspect")
			}
			if e.AllowPrivate {
				flags = append(flags, "allow_private")
			}
			if e.AllowOpaque {
				flags = append(flags, "allow_opaque")
			}
			p.line(4, "%s:%s%s", e.Host, strings.Join(ports, ","), optional(" [%s]", strings.Join(flags, " ")))
			for _, rule := range e.Allow {
				p.line(5, "allow %s", describeRule(rule))
			}
			for _, rule := range e.Deny {
				p.line(5, "deny  %s", describeRule(rule))
			}
		}
	}
}

func describeRule(r policy.HTTPRule) string {
	parts := []string{orDefault(strings.Join(r.Methods, ","), "any method")}
	parts = append(parts, orDefault(strings.Join(r.Paths, " "), "any path"))
	for _, k := range sortedStrings(r.Query) {
		parts = append(parts, fmt.Sprintf("?%s=%s", k, strings.Join(r.Query[k], "|")))
	}
	return strings.Join(parts, " ")
}

type printer struct {
	w   io.Writer
	err error
}

func (p *printer) line(indent int, format string, args ...any) {
	if p.err != nil {
		return
	}
	_, p.err = fmt.Fprintf(p.w, "%s%s\n", strings.Repeat("  ", indent), fmt.Sprintf(format, args...))
}

func optional(format, v string) string {
	if v == "" {
		return ""
	}
	return fmt.Sprintf(format, v)
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func limit(n int64) string {
	if n == 0 {
		return "unlimited"
	}
	return strconv.FormatInt(n, 10)
}

func money(f float64) string {
	if f == 0 {
		return "unlimited"
	}
	return strconv.FormatFloat(f, 'f', 2, 64)
}

func trimFloat(f float64) string {
	if f == 0 {
		return ""
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

func sizeString(n int64) string {
	switch {
	case n == 0:
		return ""
	case n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return strconv.FormatInt(n, 10) + "B"
}

func sortedStrings[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
