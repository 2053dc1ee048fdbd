package runtime

import (
	"os"
	"sync"

	"context"
	"encoding/json"
	"fmt"
	"golang.org/x/sync/errgroup"
	"sort"
	"strings"
	"time"

	"github.com/nemoclave/nemoclave/blueprints"
	"github.com/nemoclave/nemoclave/gateway/inference"
	"github.com/nemoclave/nemoclave/host/plugins"
	"github.com/nemoclave/nemoclave/policy"
	"github.com/nemoclave/nemoclave/sandbox"
	"github.com/nemoclave/nemoclave/sandbox/pluginbox"
	"github.com/nemoclave/nemoclave/sdk/dataproc"
	"github.com/nemoclave/nemoclave/sdk/embeddings"
	"github.com/nemoclave/nemoclave/sdk/llm"
	"github.com/nemoclave/nemoclave/sdk/memory"
	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/retrieval"
	"github.com/nemoclave/nemoclave/sdk/tools"
)

// launched is a run's plugins by blueprint address (plugin.<kind>.<name>).
type launched map[string]*plugins.Supervised

// pluginSource maps a blueprint plugin to what the manager resolves.
func pluginSource(p *blueprints.Plugin) (source string, config json.RawMessage, err error) {
	switch p.SourceType {
	case blueprints.SourceMCP:
		// An imported MCP server is served by the builtin tools-mcp plugin.
		cfg := map[string]any{}
		if len(p.Config) > 0 {
			if err := json.Unmarshal(p.Config, &cfg); err != nil {
				return "", nil, err
			}
		}
		for k, v := range cfg {
			if v == nil {
				delete(cfg, k) // unset: the plugin's own default applies
			}
		}
		if p.MCP != nil {
			if len(p.MCP.Command) > 0 {
				cfg["command"] = p.MCP.Command
			}
			if p.MCP.URL != "" {
				cfg["url"] = p.MCP.URL
			}
		}
		b, err := json.Marshal(cfg)
		return "builtin/tools-mcp", b, err
	case blueprints.SourcePath:
		return p.Path, p.Config, nil
	default:
		return p.Source, p.Config, nil
	}
}

// launchPlugins starts every plugin of the blueprint, resolving
// credentials right before each launch. Plugins start in waves: each wave
// holds the plugins whose wired targets all run already, launched
// concurrently. On error everything started so far is stopped.
// reattach names debug plugins this run attaches to instead of launching
// (the CLI's NEMOCLAVE_REATTACH_PLUGINS). The plugins log to the plugin
// logs of the run's sandboxes.
func (r *Runtime) launchPlugins(ctx context.Context, bp *blueprints.Blueprint, reattach map[string]plugin.ReattachInfo) (launched, error) {
	out := launched{}
	holders := runSandboxes(bp)
	ok := false
	defer func() {
		if !ok {
			out.close(r.pool, holders)
		}
	}()
	var mu sync.Mutex
	waves := launchWaves(bp)
	for i, wave := range waves {
		names := make([]string, 0, len(wave))
		for _, p := range wave {
			names = append(names, p.Address)
		}
		msg := "starting " + strings.Join(names, ", ")
		if len(waves) > 1 {
			msg += fmt.Sprintf(" (group %d of %d)", i+1, len(waves))
		}
		sandbox.ReportProgress(ctx, msg)
		g, gctx := errgroup.WithContext(ctx)
		for _, p := range wave {
			g.Go(func() error {
				s, err := r.startPlugin(gctx, bp, p, out, reattach, holders)
				if err != nil {
					return err
				}
				mu.Lock()
				out[p.Address] = s
				mu.Unlock()
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return nil, err
		}
	}
	ok = true
	return out, nil
}

// runSandboxes names the sandboxes of a run, one per agent.
func runSandboxes(bp *blueprints.Blueprint) []string {
	out := make([]string, 0, len(bp.Agents))
	for _, a := range bp.Agents {
		out = append(out, a.Sandbox)
	}
	return out
}

// startPlugin launches one plugin of bp, logging to the plugin logs of
// holders; its wired targets are in started, which is not written while a
// wave runs.
func (r *Runtime) startPlugin(ctx context.Context, bp *blueprints.Blueprint, p *blueprints.Plugin, started launched, reattach map[string]plugin.ReattachInfo, holders []string) (*plugins.Supervised, error) {
	source, cfg, err := pluginSource(p)
	if err != nil {
		return nil, fmt.Errorf("plugin %s: %w", p.Address, err)
	}
	cfg, err = blueprints.ResolveCredentials(cfg, p.Credentials, r.opts.Credential)
	if err != nil {
		return nil, r.redactErr(fmt.Errorf("plugin %s: %w", p.Address, err))
	}
	spec := plugins.Spec{Source: source, Kind: plugin.Kind(p.Kind), Name: p.Name, Config: cfg, Reattach: reattach}
	var eps []policy.Endpoint
	spec.Access, eps = pluginAccess(source, p.Kind, cfg)
	// tools-http fetches for the agents that use it: under their
	// sandboxes' network policy, not a policy of its own.
	var trustBundle string
	var fetchFor []string
	if fetchesForAgents(source) {
		eps, fetchFor = agentEndpoints(bp, p), agentSandboxes(bp, p)
		if trustBundle, err = r.pluginTrust(p, &spec, eps); err != nil {
			return nil, fmt.Errorf("plugin %s: %w", p.Address, err)
		}
	}
	// A cloud identity (metadata services, token files) needs the host
	// network; it decides before the egress proxy does.
	cloudIdentity(source, cfg, &spec, os.LookupEnv)
	if spec.Access.Network == pluginbox.NetworkProxy {
		spec.Access.Egress = r.pluginEgress(p.Kind, p.Name, eps, fetchFor, trustBundle)
	}
	if p.Unconfined && r.opts.ConfinePlugins {
		if err := r.unconfined(p.Address); err != nil {
			return nil, err
		}
		spec.Unconfined = true
	}
	if why := unboxable(source, cfg); why != "" && r.opts.ConfinePlugins {
		spec.Unconfined = true
		r.log.Warn("plugin runs unconfined", "plugin", p.Address, "reason", why)
	}
	if p.Timeout != "" {
		spec.CallTimeout, _ = time.ParseDuration(p.Timeout) // checked at evaluation
	}
	if l := p.Locked; l != nil {
		// Held to the project lock at launch, not only at evaluation.
		spec.Pin = &plugins.Pin{Version: l.Version, Hash: l.Hash, DevOverride: l.DevOverride}
	}
	for _, w := range p.Wiring {
		target := started["plugin."+w.Kind+"."+w.Name]
		if target == nil {
			return nil, fmt.Errorf("plugin %s: wired plugin plugin.%s.%s was not started", p.Address, w.Kind, w.Name)
		}
		spec.Wires = append(spec.Wires, plugins.Wire{Attribute: strings.Join(w.Path, "."), Target: target})
	}
	// Kept idle for the next run (pool.go) unless it fetches for this
	// run's agents (it follows their sandboxes' live policy), a debugger
	// holds it, or the run bounds a workspace (the process would keep the
	// volume busy past the run, and hold the directory under it after).
	keep := len(fetchFor) == 0 && len(reattach) == 0 && !boundsWorkspace(bp)
	s, err := r.pool.acquire(ctx, spec, eps, fetchFor, holders, keep, func(spec plugins.Spec) (*plugins.Supervised, error) { return r.plugins.Start(ctx, spec) })
	if err != nil {
		return nil, r.redactErr(fmt.Errorf("plugin %s (%s): %w", p.Address, source, err))
	}
	return s, nil
}

// boundsWorkspace says whether a local sandbox of bp has a bounded
// workspace (resources.workspace_size).
func boundsWorkspace(bp *blueprints.Blueprint) bool {
	if bp == nil {
		return false
	}
	for _, name := range runSandboxes(bp) {
		if sb := bp.Sandbox(name); sb != nil && sb.Resources.WorkspaceBytes > 0 && sb.Driver != blueprints.DriverKubernetes {
			return true
		}
	}
	return false
}

// launchWaves groups the blueprint's plugins (in its launch order, wired
// targets first) by depth: a plugin's wave is one more than its deepest
// wired target's.
func launchWaves(bp *blueprints.Blueprint) [][]*blueprints.Plugin {
	depth := map[string]int{}
	var waves [][]*blueprints.Plugin
	for _, p := range bp.LaunchOrder() {
		d := 0
		for _, w := range p.Wiring {
			if td, ok := depth["plugin."+w.Kind+"."+w.Name]; ok && td+1 > d {
				d = td + 1
			}
		}
		depth[p.Address] = d
		for len(waves) <= d {
			waves = append(waves, nil)
		}
		waves[d] = append(waves[d], p)
	}
	return waves
}

// close releases the run's plugins, whose lines stop going to the logs
// of holders (the run's sandboxes): a process no other run shares stops,
// concurrently with the others (each may take its shutdown grace period).
func (l launched) close(pool *pluginPool, holders []string) {
	pool.close(l.all(), holders)
}

func (l launched) all() []*plugins.Supervised {
	sups := make([]*plugins.Supervised, 0, len(l))
	for _, s := range l {
		sups = append(sups, s)
	}
	return sups
}

// supervised returns the plugin at addr. Its kind clients survive a
// plugin restart: calls go to whichever process currently serves it.
func (l launched) supervised(addr string) (*plugins.Supervised, error) {
	s := l[addr]
	if s == nil {
		return nil, fmt.Errorf("%s is not a plugin of this blueprint", addr)
	}
	return s, nil
}

func (l launched) tools(name string) (tools.Provider, error) {
	s, err := l.supervised("plugin.tools." + name)
	if err != nil {
		return nil, err
	}
	return s.Tools(), nil
}

func (l launched) memory(name string) (memory.Store, error) {
	if name == "" {
		return nil, nil
	}
	s, err := l.supervised("plugin.memory." + name)
	if err != nil {
		return nil, err
	}
	return s.Memory(), nil
}

func (l launched) retrieval(name string) (retrieval.Store, error) {
	if name == "" {
		return nil, nil
	}
	s, err := l.supervised("plugin.retrieval." + name)
	if err != nil {
		return nil, err
	}
	return s.Retrieval(), nil
}

// dataproc returns the blueprint's data-processing plugin (the first by
// address when there are several), or nil.
func (l launched) dataproc() dataproc.Processor {
	for _, addr := range sortedKeys(l) {
		if s := l[addr]; s.Kind() == plugin.KindDataProc {
			return s.DataProc()
		}
	}
	return nil
}

// providers returns the llm and embeddings plugins by address, the names
// the inference routes use.
func (l launched) providers() (map[string]llm.Provider, map[string]embeddings.Embedder) {
	llms, embs := map[string]llm.Provider{}, map[string]embeddings.Embedder{}
	for addr, s := range l {
		switch s.Kind() {
		case plugin.KindLLM:
			llms[addr] = s.LLM()
		case plugin.KindEmbeddings:
			embs[addr] = s.Embeddings()
		}
	}
	return llms, embs
}

// routesFor compiles the blueprint's inference block into router routes.
func routesFor(bp *blueprints.Blueprint) (inference.Routes, inference.Limits, error) {
	rt := inference.Routes{Models: map[string]inference.Route{}, Embeddings: map[string]inference.EmbeddingsRoute{}}
	var lim inference.Limits
	for _, p := range bp.Plugins {
		if p.Kind == string(plugin.KindEmbeddings) {
			rt.Embeddings[p.Name] = inference.EmbeddingsRoute{Embedder: p.Address}
			if rt.DefaultEmbeddings == "" {
				rt.DefaultEmbeddings = p.Name
			}
		}
	}
	in := bp.Inference
	if in == nil {
		return rt, lim, nil
	}
	rt.Default = in.Default
	for _, m := range in.Models {
		provider := m.Provider
		if !strings.HasPrefix(provider, "plugin.") {
			provider = "plugin.llm." + provider // the blueprint names the llm plugin
		}
		route := inference.Route{Provider: provider, Model: m.Model, Fallback: m.Fallback, Timeout: time.Duration(m.Timeouts.Total), Total: time.Duration(m.Timeouts.Total),
			Connect:        time.Duration(m.Timeouts.Connect),
			MaxTokensLimit: m.MaxTokensLimit, MaxN: m.MaxN}
		if fb := time.Duration(m.Timeouts.FirstByte); fb > 0 && (route.Timeout == 0 || fb < route.Timeout) {
			route.Timeout = fb
		}
		if len(m.Parameters) > 0 {
			var p struct {
				Temperature *float64 `json:"temperature"`
				TopP        *float64 `json:"top_p"`
				MaxTokens   *int64   `json:"max_tokens"`
			}
			if err := json.Unmarshal(m.Parameters, &p); err != nil {
				return rt, lim, fmt.Errorf("model %q parameters: %w", m.Alias, err)
			}
			var extra map[string]json.RawMessage
			_ = json.Unmarshal(m.Parameters, &extra)
			delete(extra, "temperature")
			delete(extra, "top_p")
			delete(extra, "max_tokens")
			route.Parameters = inference.Parameters{Temperature: p.Temperature, TopP: p.TopP, MaxTokens: p.MaxTokens}
			if len(extra) > 0 {
				route.Parameters.Extra, _ = json.Marshal(extra)
			}
		}
		rt.Models[m.Alias] = route
	}
	if b := in.Budget; b != nil {
		if b.TokensPerHour > 0 {
			return rt, lim, fmt.Errorf("inference budget tokens_per_hour is not enforced by this gateway; use tokens_per_day or a rate_limit tokens_per_minute")
		}
		lim.Budget = inference.Budget{TokensPerDay: b.TokensPerDay, TokensPerMonth: b.TokensPerMonth, CostPerDayUSD: b.CostPerDayUSD, CostPerMonthUSD: b.CostPerMonthUSD}
	}
	if rl := in.RateLimit; rl != nil {
		lim.RateLimit = inference.RateLimit{RequestsPerMinute: rl.RequestsPerMinute, TokensPerMinute: rl.TokensPerMinute, Concurrent: rl.Concurrent}
	}
	return rt, lim, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
