package egress

import (
	"fmt"
	"strings"

	"github.com/nemoclave/nemoclave/policy"
)

// PluginID is the identity a confined plugin's egress is judged and
// audited under (the "sandbox" field of its audit lines): the plugin's
// block address and a per-launch number, so two runs of one blueprint, or
// a restarted plugin, never share approvals or counters.
func PluginID(kind, name string, launch int64) string {
	return fmt.Sprintf("plugin.%s.%s#%d", kind, name, launch)
}

// IsPluginID says whether id is a PluginID ('#' is in no sandbox name).
func IsPluginID(id string) bool { return strings.HasPrefix(id, "plugin.") && strings.Contains(id, "#") }

// PluginPolicy is the network policy of a confined plugin: the endpoints
// its config names (a provider's base_url, for instance) and nothing
// else; unknown hosts are denied, never held for an operator (a plugin
// has no operator at its terminal). The filesystem part only satisfies
// Validate: a plugin's files are its box's business, not the gateway's.
func PluginPolicy(id string, endpoints []policy.Endpoint) *policy.Policy {
	pol := &policy.Policy{
		Name:         id,
		Revision:     1,
		Filesystem:   policy.Filesystem{ReadOnly: []string{"/"}},
		UnknownHosts: policy.UnknownDeny,
	}
	if len(endpoints) > 0 { // none: every connection is refused (and audited)
		pol.Network = []policy.NetworkRule{{Name: "plugin config", Source: "plugin", Endpoints: endpoints}}
	}
	return pol
}

// RecordPlugin writes a plugin-lifecycle line to the audit log (kind
// "plugin"), for decisions about a plugin's network and confinement that
// are not a connection: a plugin started unconfined (decision
// "unconfined") or refused for asking to be (decision "deny"). The error
// is returned so a caller can refuse what it could not record.
func (p *Proxy) RecordPlugin(plugin, decision, reason string) error {
	return p.recordStrict(Event{Sandbox: plugin, Kind: "plugin", Decision: decision, Reason: reason})
}
