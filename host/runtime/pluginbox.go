package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/nemoclave/nemoclave/blueprints"
	"github.com/nemoclave/nemoclave/gateway/egress"
	"github.com/nemoclave/nemoclave/host/plugins"
	"github.com/nemoclave/nemoclave/policy"
	"github.com/nemoclave/nemoclave/sandbox"
	"github.com/nemoclave/nemoclave/sandbox/pluginbox"
)

// pluginBox is the box every plugin of this daemon starts in: the small
// nemoclave-pluginbox binary beside the daemon's (or among the builtin
// plugins) as the box's init, else the daemon's own binary, which calls
// pluginbox.MaybeInit too but starts slower; an empty root mount point
// under Home; the same cgroup parent as the local driver's sandboxes.
func pluginBox(o Options) (*pluginbox.Box, error) {
	exe, err := beside(o, "nemoclave-pluginbox")
	if err != nil {
		return nil, fmt.Errorf("plugin confinement: cannot find the nemoclave binary to start plugin boxes with: %w", err)
	}
	root := filepath.Join(o.Home, "run", "pluginbox-root")
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("plugin confinement: %w (check that %s is writable)", err, o.Home)
	}
	return &pluginbox.Box{Launcher: exe, RootDir: root, CgroupParent: cgroupParent(o.Home)}, nil
}

// pluginAccess derives what a confined plugin may reach from its config,
// the rule docs/plugins.md states: every absolute path its config names is
// visible (writable for the kinds that keep data there or act on it:
// memory, retrieval, tools; read-only otherwise). Network:
//   - a plugin whose config names only URLs of remote hosts (a provider's
//     base_url) gets a network namespace of its own whose one way out is
//     the egress gateway, under a policy naming exactly those hosts and
//     ports (the returned endpoints): every connection is judged and
//     audited with the plugin's identity;
//   - a plugin whose config names a database address, or a URL on the
//     host's loopback (a local model server, which no sandbox may reach
//     through the gateway), gets a network namespace of its own in which
//     exactly those host:port pairs are reachable, each forwarded by the
//     host to that one address (pluginbox.NetworkForward);
//   - a plugin naming both kinds keeps the host network with TCP connect
//     limited to the ports named;
//   - tools-http fetches what the agent asks for: it gets the egress
//     gateway like a provider plugin, under the network policy of the
//     sandboxes whose agents use it (the caller fills in those endpoints,
//     agentEndpoints), so it reaches exactly what the agent could;
//   - everything else gets no network at all.
func pluginAccess(source, kind string, cfg json.RawMessage) (*pluginbox.Profile, []policy.Endpoint) {
	var v any
	_ = json.Unmarshal(cfg, &v)
	var strs []string
	collectStrings(v, &strs)
	writable := kind == "memory" || kind == "retrieval" || kind == "tools"
	// A daemon that is not root can create cgroups only where one was
	// delegated to it; rather than refuse every plugin there, its boxes run
	// without cgroup limits (the runner logs a warning), as a sandbox with
	// resources.allow_unlimited does. Everything else still fails closed.
	p := &pluginbox.Profile{Resources: sandbox.Resources{AllowUnlimited: os.Geteuid() != 0}}
	ports := map[int]bool{}
	var forwards []pluginbox.Forward // database or loopback addresses: proxying cannot serve them
	seen := map[string]bool{}
	var eps []policy.Endpoint
	for _, s := range strs {
		switch {
		case filepath.IsAbs(s) && !strings.ContainsAny(s, "\n\x00"):
			path := filepath.Clean(s)
			if st, err := os.Stat(path); err != nil || !st.IsDir() {
				if !writable && err != nil {
					continue // nothing to read there
				}
				if writable {
					path = filepath.Dir(path) // a database file: its journal lives beside it
				}
			}
			if path == "/" || seen[path] {
				continue
			}
			seen[path] = true
			if writable {
				p.ReadWrite = append(p.ReadWrite, path)
			} else {
				p.ReadOnly = append(p.ReadOnly, path)
			}
		default:
			ts := addrTargets(s)
			for _, f := range ts {
				ports[f.Port] = true
			}
			if len(ts) == 0 {
				continue
			}
			if ep, ok := proxiedEndpoint(s, ts[0].Port); ok {
				if !seen["endpoint "+ep.Host+":"+strconv.Itoa(ts[0].Port)] {
					seen["endpoint "+ep.Host+":"+strconv.Itoa(ts[0].Port)] = true
					eps = append(eps, ep)
				}
				continue
			}
			for _, f := range ts {
				if !seen["forward "+f.String()] {
					seen["forward "+f.String()] = true
					forwards = append(forwards, f)
				}
			}
		}
	}
	if fetchesForAgents(source) {
		// Its endpoints are its agents' (agentEndpoints), whatever URLs
		// its config names; nothing of it reaches the host network.
		p.Network, p.Ports = pluginbox.NetworkProxy, nil
		return p, nil
	}
	switch {
	case len(forwards) > 0 && len(eps) > 0:
		p.Network = pluginbox.NetworkHost
		for port := range ports {
			p.Ports = append(p.Ports, port)
		}
		sort.Ints(p.Ports)
		return p, nil
	case len(forwards) > 0:
		p.Network, p.Forwards = pluginbox.NetworkForward, forwards
		return p, nil
	case len(eps) > 0:
		p.Network = pluginbox.NetworkProxy
		return p, eps
	}
	return p, nil
}

// fetchesForAgents reports a plugin that connects where the agent asks
// (tools-http): its network policy is the agent's sandbox's.
func fetchesForAgents(source string) bool { return strings.HasSuffix(source, "tools-http") }

// agentEndpoints is the network policy a plugin that fetches for agents
// works under: every endpoint of the effective policies of the sandboxes
// whose agents (or subagents) use the tools plugin p, in blueprint order.
// A plugin no agent uses gets none: every connection is refused. Hosts
// a sandbox gains later (approvals, policy set) are not added: the plugin
// keeps the policy it started with, and its fetches of them are refused.
func agentEndpoints(bp *blueprints.Blueprint, p *blueprints.Plugin) []policy.Endpoint {
	var eps []policy.Endpoint
	for _, name := range agentSandboxes(bp, p) {
		for _, s := range bp.Sandboxes {
			if s.Name != name || s.Policy == nil {
				continue
			}
			for _, rule := range s.Policy.Network {
				eps = append(eps, rule.Endpoints...)
			}
		}
	}
	return eps
}

// agentSandboxes names the sandboxes whose agents (or subagents) use the
// tools plugin p, in the blueprint's order: a plugin that fetches for
// agents is judged by their live policies (egress.Proxy.FetchFor).
func agentSandboxes(bp *blueprints.Blueprint, p *blueprints.Plugin) []string {
	if bp == nil || p.Kind != "tools" {
		return nil
	}
	uses := func(a *blueprints.Agent) bool {
		if slices.Contains(a.Tools, p.Name) {
			return true
		}
		for _, s := range a.Subagents {
			if slices.Contains(s.Tools, p.Name) {
				return true
			}
		}
		return false
	}
	var out []string
	seen := map[string]bool{}
	for _, a := range bp.Agents {
		if !uses(a) || seen[a.Sandbox] {
			continue
		}
		seen[a.Sandbox] = true
		out = append(out, a.Sandbox)
	}
	return out
}

// proxiedEndpoint is the egress endpoint for an http(s) or ws(s) URL on a
// host other than the loopback, with its port; ok is false for anything
// else (a database address, a loopback URL), which the gateway cannot
// serve. Private addresses are allowed (AllowPrivate): the operator named
// the host in the plugin's config, and an in-house model server is a
// common one; loopback, link-local and metadata addresses stay refused.
func proxiedEndpoint(s string, port int) (policy.Endpoint, bool) {
	u, err := url.Parse(s)
	if err != nil || u.Hostname() == "" {
		return policy.Endpoint{}, false
	}
	switch u.Scheme {
	case "http", "https", "ws", "wss":
	default:
		return policy.Endpoint{}, false
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return policy.Endpoint{}, false
	}
	if a, err := netip.ParseAddr(host); err == nil && (a.IsLoopback() || a.IsUnspecified()) {
		return policy.Endpoint{}, false
	}
	ep := policy.Endpoint{Host: host, Ports: []int{port}, AllowPrivate: true}
	// ws:// through a proxy is a CONNECT tunnel carrying no TLS.
	ep.AllowOpaque = u.Scheme == "ws"
	if policy.ValidateHostPattern(ep.Host) != nil {
		return policy.Endpoint{}, false
	}
	return ep, true
}

// pluginLaunches numbers the proxied plugin processes this daemon starts:
// each launch, restarts included, is judged and audited under an identity
// of its own (egress.PluginID).
var pluginLaunches atomic.Int64

// pluginEgress serves a NetworkProxy box's listener with the daemon's
// egress gateway under the plugin's policy (the endpoints its config
// names, unknown hosts denied), for as long as that plugin process lives.
// A plugin that fetches for agents (fetchFor, their sandboxes) is judged
// by those sandboxes' policies as they are at each connection, so an
// operator's approval reaches it at once.
func (r *Runtime) pluginEgress(kind, name string, eps []policy.Endpoint, fetchFor []string, trustBundle string) func(context.Context, net.Listener) {
	return func(ctx context.Context, ln net.Listener) {
		id := egress.PluginID(kind, name, pluginLaunches.Add(1))
		err := r.egress.SetPolicy(id, egress.PluginPolicy(id, eps))
		if err == nil && len(fetchFor) > 0 {
			err = r.egress.FetchFor(id, fetchFor)
		}
		if err != nil {
			// Nothing is served: every connect the plugin makes fails,
			// which its calls report.
			r.log.Error("plugin egress policy refused; the plugin has no network", "plugin", id, "err", err)
			r.egress.RemoveSandbox(id)
			ln.Close()
			return
		}
		if trustBundle != "" {
			// This launch's inspection CA, before the plugin can make its
			// first call (it is still completing go-plugin's handshake).
			if err := r.writeTrustBundle(id, trustBundle); err != nil {
				r.log.Error("plugin trust bundle not written; the plugin has no network", "plugin", id, "err", err)
				r.egress.RemoveSandbox(id)
				ln.Close()
				return
			}
		}
		defer r.egress.RemoveSandbox(id)
		if err := r.egress.Serve(ctx, ln, id); err != nil {
			r.log.Warn("plugin egress listener failed", "plugin", id, "err", err)
		}
	}
}

// pluginTrust prepares what a plugin that fetches for agents needs when
// their policy inspects an endpoint (TLS terminated by the gateway with a
// per-launch CA): a directory the box reads, where each launch's egress
// writes its trust bundle (system roots, the corporate CA, that launch's
// CA), named in the plugin's TLS environment. Without inspected endpoints
// it does nothing and returns "".
func (r *Runtime) pluginTrust(p *blueprints.Plugin, spec *plugins.Spec, eps []policy.Endpoint) (string, error) {
	if !slices.ContainsFunc(eps, func(e policy.Endpoint) bool { return e.Inspect }) || spec.Access == nil {
		return "", nil
	}
	dir := filepath.Join(r.opts.Home, "run", "plugin-trust", p.Kind+"."+p.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("trust bundle directory: %w", err)
	}
	bundle := filepath.Join(dir, "ca-bundle.pem")
	spec.Access.ReadOnly = append(spec.Access.ReadOnly, dir)
	if spec.Env == nil {
		spec.Env = map[string]string{}
	}
	for _, kv := range egress.TrustEnv(bundle) {
		k, v, _ := strings.Cut(kv, "=")
		spec.Env[k] = v
	}
	return bundle, nil
}

// writeTrustBundle writes launch id's trust bundle at path, atomically.
func (r *Runtime) writeTrustBundle(id, path string) error {
	b, err := r.egress.TrustBundle(id)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// unconfined decides a plugin block's confine = false: refused unless the
// daemon allows unconfined plugins, and recorded in the audit log and the
// daemon log either way. A decision that cannot be recorded is a refusal.
func (r *Runtime) unconfined(addr string) error {
	if !r.opts.AllowUnconfinedPlugins {
		reason := "confine = false, but this daemon does not allow unconfined plugins"
		_ = r.egress.RecordPlugin(addr, "deny", reason)
		r.log.Warn("unconfined plugin refused", "plugin", addr)
		return fmt.Errorf("plugin %s: %s. Remove confine = false from its block (the plugin then runs in a plugin box), or, if you trust it as much as nemoclave itself, restart the daemon allowing it: nemoclave daemon stop, then run again with NEMOCLAVE_ALLOW_UNCONFINED_PLUGINS=1 in the environment (or start nemoclave daemon --allow-unconfined-plugins yourself)", addr, reason)
	}
	reason := "confine = false: runs outside any plugin box, as the daemon's user, with the daemon's files and network"
	if err := r.egress.RecordPlugin(addr, "unconfined", reason); err != nil {
		return fmt.Errorf("plugin %s: not started unconfined, because its audit record cannot be written: %w", addr, err)
	}
	r.log.Warn("PLUGIN RUNS UNCONFINED", "plugin", addr, "reason", reason)
	return nil
}

// unconfinedPlugins lists the blueprint's plugins with confine = false.
func unconfinedPlugins(bp *blueprints.Blueprint) []string {
	var out []string
	for _, p := range bp.Plugins {
		if p.Unconfined {
			out = append(out, p.Address)
		}
	}
	return out
}

// unboxable says why a plugin cannot run in a box, or "". tools-mcp with a
// stdio server builds a local sandbox of its own for that server (user,
// mount and pid namespaces, cgroups), which the box's seccomp filter and
// empty capability set forbid by design; it runs as before, unconfined,
// its server confined by that sandbox.
func unboxable(source string, cfg json.RawMessage) string {
	if !strings.HasSuffix(source, "tools-mcp") {
		return ""
	}
	var c struct {
		Command []string `json:"command"`
	}
	if json.Unmarshal(cfg, &c) == nil && len(c.Command) > 0 {
		return "tools-mcp runs its stdio server in a local sandbox of its own, which cannot be built from inside a plugin box"
	}
	return ""
}

func collectStrings(v any, out *[]string) {
	switch t := v.(type) {
	case string:
		*out = append(*out, t)
	case []any:
		for _, e := range t {
			collectStrings(e, out)
		}
	case map[string]any:
		for _, e := range t {
			collectStrings(e, out)
		}
	}
}

// addrTargets returns the TCP addresses a URL or a libpq key/value DSN
// names, the scheme's default port when it names none (a DSN's is 5432).
// A DSN host that is a directory (a unix socket) names no TCP address.
func addrTargets(s string) []pluginbox.Forward {
	if kv := dsnFields(s); kv != nil {
		host := kv["hostaddr"] // what libpq connects to when both are given
		if host == "" {
			host = kv["host"]
		}
		if host == "" {
			return nil
		}
		hosts, ports := strings.Split(host, ","), strings.Split(kv["port"], ",")
		var out []pluginbox.Forward
		for i, h := range hosts {
			port := ports[0]
			if len(ports) == len(hosts) {
				port = ports[i]
			}
			n := 5432
			if port != "" {
				var err error
				if n, err = strconv.Atoi(port); err != nil {
					continue
				}
			}
			if h = strings.TrimSpace(h); h != "" && !strings.HasPrefix(h, "/") && !strings.HasPrefix(h, "@") {
				out = append(out, pluginbox.Forward{Host: h, Port: n})
			}
		}
		return out
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Hostname() == "" {
		return nil
	}
	n := 0
	if p := u.Port(); p != "" {
		if n, err = strconv.Atoi(p); err != nil {
			return nil
		}
	} else {
		switch u.Scheme {
		case "http", "ws":
			n = 80
		case "https", "wss":
			n = 443
		case "postgres", "postgresql":
			n = 5432
		default:
			return nil
		}
	}
	return []pluginbox.Forward{{Host: u.Hostname(), Port: n}}
}

var dsnField = regexp.MustCompile(`(?:^|\s)(host|hostaddr|port)=([^\s']*)`)

// dsnFields returns the host, hostaddr and port of a libpq key/value
// DSN ("host=db port=6543 user=u"), or nil when s is not one.
func dsnFields(s string) map[string]string {
	if strings.Contains(s, "://") {
		return nil
	}
	ms := dsnField.FindAllStringSubmatch(s, -1)
	if len(ms) == 0 {
		return nil
	}
	kv := map[string]string{}
	for _, m := range ms {
		kv[m[1]] = m[2]
	}
	return kv
}

// beside finds a small single-purpose binary (an init stage) beside the
// daemon's, among the builtin plugins, or in NEMOCLAVE_BIN_DIR; without
// one it is the daemon's own binary, whose main runs every init stage too
// but starts slower and holds more memory.
func beside(o Options, name string) (string, error) {
	exe := o.Executable
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return "", err
		}
	}
	if real, err := filepath.EvalSymlinks(exe); err == nil {
		exe = real
	}
	for _, dir := range []string{o.PluginBinDir, os.Getenv("NEMOCLAVE_BIN_DIR"), filepath.Dir(exe)} {
		if dir == "" {
			continue
		}
		if p := filepath.Join(dir, name); isExecutable(p) {
			return p, nil
		}
	}
	return exe, nil
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}
