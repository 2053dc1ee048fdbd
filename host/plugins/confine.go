package plugins

import (
	"os/exec"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin/runner"

	"github.com/nemoclave/nemoclave/sandbox/pluginbox"
)

// boxRunner returns the runner that starts b inside a plugin box (see
// sandbox/pluginbox), or nil when the manager confines nothing
// (Options.Box unset) or the spec opted out. The profile's name, binary,
// checksum and state dir are the manager's; what else the plugin may reach
// is the caller's (Spec.Access), derived from the plugin block.
//
// v is the launch's verification: when the binary's hash was found by its
// identity (an unchanged, settled file), the box is told that identity and
// hashes the binary again only if what it opens differs.
func (m *Manager) boxRunner(b *Binary, v *verified, spec Spec, kind, name, stateDir string) func(hclog.Logger, *exec.Cmd, string) (runner.Runner, error) {
	if m.opts.Box == nil || spec.Unconfined {
		return nil
	}
	p := pluginbox.Profile{}
	if spec.Access != nil {
		p = *spec.Access
	}
	p.Name = kind + "." + name
	p.Binary = b.Path
	p.SHA256 = b.SHA256
	if id, ok := v.settledID(); ok {
		p.Verified = &id
	}
	// The state dir comes first: the box starts the plugin in it.
	p.ReadWrite = append([]string{stateDir}, p.ReadWrite...)
	return func(l hclog.Logger, cmd *exec.Cmd, socketDir string) (runner.Runner, error) {
		return m.opts.Box.Runner(l, cmd, socketDir, p)
	}
}
