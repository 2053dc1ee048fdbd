package egress

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nemoclave/nemoclave/policy"
)

// Revision records one network policy revision applied to a sandbox.
type Revision struct {
	Revision int       `json:"revision"`
	Applied  time.Time `json:"applied"`
	Hosts    []string  `json:"hosts"`
	Source   string    `json:"source"` // "reload" or "approval"
}

// sandbox is the gateway's state for one sandbox.
type sandbox struct {
	id string

	mu        sync.Mutex
	pol       *policy.Policy
	revisions []Revision
	grants    map[string]bool // host:port approved for the sandbox's lifetime
	tunnels   map[*tunnel]struct{}
	conns     atomic.Int64 // open client connections, for MaxConnsPerSandbox

	caMu sync.Mutex
	ca   *CA

	// fetchFor names the sandboxes a plugin identity fetches for
	// (tools-http): when set, a target is judged by their policies and
	// lifetime approvals as they are now, not by a snapshot (FetchFor).
	// lookup finds them; both are written once, before any connection.
	fetchFor []string
	lookup   func(id string) (*sandbox, bool)
}

func newSandbox(id string) *sandbox {
	return &sandbox{id: id, grants: map[string]bool{}, tunnels: map[*tunnel]struct{}{}}
}

func (sb *sandbox) policy() *policy.Policy {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return sb.pol
}

func (sb *sandbox) tunnelList() []*tunnel {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	out := make([]*tunnel, 0, len(sb.tunnels))
	for t := range sb.tunnels {
		out = append(out, t)
	}
	return out
}

func (sb *sandbox) addTunnel(t *tunnel) {
	sb.mu.Lock()
	sb.tunnels[t] = struct{}{}
	sb.mu.Unlock()
}

func (sb *sandbox) removeTunnel(t *tunnel) {
	sb.mu.Lock()
	delete(sb.tunnels, t)
	sb.mu.Unlock()
}

// decision is the policy's answer for one target.
type decision struct {
	allow    bool
	ask      bool // unknown host under unknown_hosts = "ask"
	rule     string
	endpoint policy.Endpoint
	revision int
	reason   string
}

// decide judges t against the current revision and lifetime approvals. It
// never resolves anything.
func (sb *sandbox) decide(t Target) decision {
	sb.mu.Lock()
	pol, granted, fetchFor := sb.pol, sb.grants[t.String()], sb.fetchFor
	sb.mu.Unlock()
	if pol == nil {
		return decision{reason: "no network policy is loaded for this sandbox; the gateway denies everything until the control plane sets one"}
	}
	if len(fetchFor) > 0 {
		return sb.decideFor(t, pol.Revision, fetchFor)
	}
	d := decision{revision: pol.Revision}
	m := pol.Lookup(t.Host, t.Port)
	switch {
	case m.Endpoint != nil:
		d.allow, d.rule, d.endpoint = true, m.Rule.Name, *m.Endpoint
		d.reason = "allowed by network rule " + m.Rule.Name
	case granted:
		d.allow, d.rule = true, "approval:sandbox"
		d.endpoint = policy.Endpoint{Host: t.Host, Ports: []int{t.Port}}
		d.reason = "approved by the operator for this sandbox's lifetime"
	case m.HostKnown:
		d.reason = fmt.Sprintf("port %d is not allowed for %s by the network policy", t.Port, t.Host)
	case pol.UnknownHosts == policy.UnknownAsk:
		d.ask = true
		d.reason = "host is not in the network policy; held for operator approval"
	default:
		d.reason = "host is not in the network policy"
	}
	return d
}

// decideFor judges t for a plugin that fetches for the named sandboxes:
// allowed when one of them allows it now (its policy in force or an
// operator's approval); a sandbox that is gone allows nothing. Never held
// for approval: the plugin has no operator, its agent's sandbox does.
func (sb *sandbox) decideFor(t Target, revision int, fetchFor []string) decision {
	for _, id := range fetchFor {
		target, ok := sb.lookup(id)
		if !ok || target == sb {
			continue
		}
		if d := target.decide(t); d.allow {
			d.rule = id + ":" + d.rule
			d.reason += " (sandbox " + id + ", which this plugin fetches for)"
			return d
		}
	}
	return decision{revision: revision, reason: fmt.Sprintf("host is not allowed by the network policy of the sandboxes this plugin fetches for (%s)", strings.Join(fetchFor, ", "))}
}

// FetchFor makes the identity id (a plugin's, see PluginID) judge every
// connection by the network policies and lifetime approvals of the
// sandboxes it fetches for, as they are at the moment of the connection:
// a host the operator approves for one of them is reachable at once, one
// a new revision drops is refused (and its open tunnels closed). id keeps
// its own policy (SetPolicy) only as "configured": without one it denies
// everything.
func (p *Proxy) FetchFor(id string, sandboxIDs []string) error {
	for _, s := range sandboxIDs {
		if s == id {
			return fmt.Errorf("egress: %s cannot fetch for itself", id)
		}
	}
	sb := p.sandbox(id)
	sb.mu.Lock()
	sb.fetchFor, sb.lookup = append([]string(nil), sandboxIDs...), p.lookupSandbox
	sb.mu.Unlock()
	return nil
}

// recheckFetchers re-judges the open tunnels of the identities fetching
// for sandboxID, after its policy changed or it was removed.
func (p *Proxy) recheckFetchers(sandboxID string) {
	p.mu.Lock()
	var fetchers []*sandbox
	for _, sb := range p.sandboxes {
		sb.mu.Lock()
		if slices.Contains(sb.fetchFor, sandboxID) {
			fetchers = append(fetchers, sb)
		}
		sb.mu.Unlock()
	}
	p.mu.Unlock()
	for _, sb := range fetchers {
		for _, t := range sb.tunnelList() {
			if reason := t.stillAllowed(sb); reason != "" {
				t.close(reason)
			}
		}
	}
}

// SetPolicy installs a new revision of a sandbox's policy. The revision must
// validate and be newer than the one in force. New connections use it at
// once; open tunnels it no longer allows are closed (and audited).
func (p *Proxy) SetPolicy(sandboxID string, pol *policy.Policy) error {
	return p.setPolicy(sandboxID, pol, "reload")
}

func (p *Proxy) setPolicy(sandboxID string, pol *policy.Policy, source string) error {
	if err := pol.Validate(); err != nil {
		return fmt.Errorf("egress: policy for sandbox %s rejected, the previous revision stays in force: %w", sandboxID, err)
	}
	pol = pol.Clone()
	sb := p.sandbox(sandboxID)
	sb.mu.Lock()
	if sb.pol != nil && pol.Revision <= sb.pol.Revision {
		cur := sb.pol.Revision
		sb.mu.Unlock()
		return fmt.Errorf("egress: policy revision %d for sandbox %s is not newer than revision %d in force; increment Revision", pol.Revision, sandboxID, cur)
	}
	sb.pol = pol
	sb.revisions = append(sb.revisions, Revision{Revision: pol.Revision, Applied: time.Now().UTC(), Hosts: pol.Hosts(), Source: source})
	sb.mu.Unlock()
	p.record(Event{Sandbox: sandboxID, Kind: "policy", Revision: pol.Revision, Decision: source,
		Reason: fmt.Sprintf("network policy revision %d in force (%d hosts)", pol.Revision, len(pol.Hosts()))})
	for _, t := range sb.tunnelList() {
		if reason := t.stillAllowed(sb); reason != "" {
			t.close(reason)
		}
	}
	p.recheckFetchers(sandboxID)
	return nil
}

// Revisions lists the network policy revisions applied to a sandbox, oldest
// first.
func (p *Proxy) Revisions(sandboxID string) []Revision {
	sb, ok := p.lookupSandbox(sandboxID)
	if !ok {
		return nil
	}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return append([]Revision(nil), sb.revisions...)
}

// Policy returns the revision in force for a sandbox (a copy), or nil.
func (p *Proxy) Policy(sandboxID string) *policy.Policy {
	sb, ok := p.lookupSandbox(sandboxID)
	if !ok {
		return nil
	}
	return sb.policy().Clone()
}

// CA returns the sandbox's inspection CA: with Config.CAStore the one
// stored for the sandbox (created and stored on first use by any
// gateway), otherwise one made on first use in this gateway's memory. The
// caller writes TrustBundle into the sandbox and sets TrustEnv. A store
// error is returned and retried on the next call.
func (p *Proxy) CA(sandboxID string) (*CA, error) {
	sb := p.sandbox(sandboxID)
	sb.caMu.Lock()
	defer sb.caMu.Unlock()
	if sb.ca != nil {
		return sb.ca, nil
	}
	var (
		ca  *CA
		err error
	)
	// A plugin launch (PluginID) lives in this daemon only and gets a
	// CA per launch: it is never stored.
	if p.cfg.CAStore != nil && !IsPluginID(sandboxID) {
		ca, err = loadOrCreateCA(p.cfg.CAStore, sandboxID)
	} else {
		ca, err = NewCA(sandboxID)
	}
	if err != nil {
		return nil, err
	}
	sb.ca = ca
	return ca, nil
}
