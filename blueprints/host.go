package blueprints

import (
	"context"

	"github.com/hashicorp/hcl/v2"
)

// Host is what a blueprint is checked against beyond its own files: the
// sandbox drivers and the credential store of the daemon that would run
// it. The language cannot know them, but every answer is static (nothing
// is started), so validate, plan and run ask the same questions here and
// report the same located diagnostics. The caller implements it: the CLI
// from the configuration a daemon it starts would read, the daemon from
// what it actually has.
type Host interface {
	// CheckDriver returns nil when sandboxes of the named driver can be
	// created, or an error that says how to make them so (configure a
	// cluster, use the build that carries the driver). It becomes the
	// diagnostic's detail.
	CheckDriver(name string) error
	// CheckCredential returns nil when the store the run would resolve
	// credentials from holds name, or an error saying how to add it. It
	// must never return or print the value.
	CheckCredential(ctx context.Context, name string) error
}

// checkDriver reports a sandbox whose driver the host cannot provide, at
// the driver attribute (or the block header when the default applies).
func (e *evaluator) checkDriver(s *Sandbox, attr *hcl.Attribute) {
	h := e.loader.opts.Host
	if h == nil {
		return
	}
	err := h.CheckDriver(s.Driver)
	if err == nil {
		return
	}
	rng := s.DeclRange
	if attr != nil {
		rng = attr.Expr.Range()
	}
	e.errorf(rng.Ptr(), "Sandbox driver not available", "sandbox %q uses driver %q: %v", s.Name, s.Driver, err)
}

// checkCredential reports a credential() the host's store does not hold,
// at every attribute that references it; the store is asked once a name.
func (e *evaluator) checkCredential(name string, rng hcl.Range) {
	h := e.loader.opts.Host
	if h == nil {
		return
	}
	if e.credentialErrs == nil {
		e.credentialErrs = map[string]error{}
	}
	err, asked := e.credentialErrs[name]
	if !asked {
		err = h.CheckCredential(e.ctx, name)
		e.credentialErrs[name] = err
	}
	if err != nil {
		e.errorf(rng.Ptr(), "Credential not found", "credential(%q) is not in the credential store the run would use: %v", name, err)
	}
}
