package daemon

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2/hclsimple"
)

// Role is what a caller may do. Each role includes the ones below it.
type Role int

const (
	// RoleNone is an authenticated caller that no grant matches.
	RoleNone Role = iota
	// RoleViewer lists and reads: sandboxes, logs, policies, approvals, status.
	RoleViewer
	// RoleOperator answers approvals, connects to, runs and deletes
	// sandboxes, limited to the sandbox name patterns of its grant.
	RoleOperator
	// RoleAdmin changes what the platform trusts: policies, providers,
	// credentials, plugins, and stopping the daemon.
	RoleAdmin
)

func (r Role) String() string {
	switch r {
	case RoleViewer:
		return "viewer"
	case RoleOperator:
		return "operator"
	case RoleAdmin:
		return "admin"
	}
	return "none"
}

func parseRole(s string) (Role, error) {
	switch s {
	case "viewer":
		return RoleViewer, nil
	case "operator":
		return RoleOperator, nil
	case "admin":
		return RoleAdmin, nil
	}
	return RoleNone, fmt.Errorf("role %q: use viewer, operator or admin", s)
}

// AccessPath is the remote access configuration of a home.
func AccessPath(home string) string { return filepath.Join(home, "access.hcl") }

// Access is the parsed access.hcl: which OIDC issuer the daemon trusts and
// which token claims grant which role.
type Access struct {
	OIDC   OIDCConfig `hcl:"oidc,block"`
	Grants []Grant    `hcl:"grant,block"`
	// RunDirs are the directories on the daemon's host from which remote
	// callers may run blueprints: a remote path is read by the daemon, so
	// without this list a remote caller could make it parse any file.
	RunDirs []string `hcl:"run_dirs,optional"`
}

// OIDCConfig names the issuer and what a token must carry.
type OIDCConfig struct {
	Issuer string `hcl:"issuer"`
	// Audience must be in the token's aud claim.
	Audience string `hcl:"audience"`
	// ClientID is the public OAuth client of the CLI's device-code flow;
	// it defaults to Audience (an ID token's audience is its client).
	ClientID string `hcl:"client_id,optional"`
	// SubjectClaim names the claim recorded as the caller: "sub" (default)
	// or, for readable audit records, e.g. "email".
	SubjectClaim string `hcl:"subject_claim,optional"`
	// CAFile is a PEM bundle that signs the issuer's TLS certificate
	// (a private CA); the system roots otherwise.
	CAFile string   `hcl:"ca_file,optional"`
	Scopes []string `hcl:"scopes,optional"`
}

// Grant gives a role to tokens whose claim holds value (a string claim
// equal to it, or a list claim containing it).
type Grant struct {
	Name  string `hcl:"name,label"`
	Claim string `hcl:"claim,optional"`
	Value string `hcl:"value"`
	Role  string `hcl:"role"`
	// Sandboxes limits an operator to sandbox names matching these
	// patterns (path.Match syntax, e.g. "team-a-*"); empty means all.
	Sandboxes []string `hcl:"sandboxes,optional"`

	role Role
}

// LoadAccess reads and checks path. A missing file is reported with what
// to write, because remote access must never run without it.
func LoadAccess(p string) (*Access, error) {
	if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remote access needs %s with an oidc block (issuer, audience) and at least one grant; see docs/operators.md", p)
	}
	var a Access
	if err := hclsimple.DecodeFile(p, nil, &a); err != nil {
		return nil, err // the diagnostics name the file and line
	}
	if err := a.check(); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return &a, nil
}

func (a *Access) check() error {
	u, err := url.Parse(a.OIDC.Issuer)
	if err != nil || u.Host == "" {
		return fmt.Errorf("oidc.issuer %q is not a URL; write the issuer exactly as its discovery document names it", a.OIDC.Issuer)
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && loopbackHost(u.Hostname())) {
		return fmt.Errorf("oidc.issuer %q: use https (plain http is accepted only for a loopback issuer)", a.OIDC.Issuer)
	}
	if a.OIDC.Audience == "" {
		return errors.New("oidc.audience is empty: set the audience (client id) your issuer puts in tokens for nemoclave")
	}
	if a.OIDC.ClientID == "" {
		a.OIDC.ClientID = a.OIDC.Audience
	}
	if a.OIDC.SubjectClaim == "" {
		a.OIDC.SubjectClaim = "sub"
	}
	if len(a.Grants) == 0 {
		return errors.New("no grant block: nobody could do anything remotely; add e.g. grant \"admins\" { claim = \"groups\" value = \"nemoclave-admins\" role = \"admin\" }")
	}
	for i := range a.Grants {
		g := &a.Grants[i]
		if g.Claim == "" {
			g.Claim = "groups"
		}
		if g.role, err = parseRole(g.Role); err != nil {
			return fmt.Errorf("grant %q: %w", g.Name, err)
		}
		for _, p := range g.Sandboxes {
			if _, err := path.Match(p, ""); err != nil {
				return fmt.Errorf("grant %q: sandbox pattern %q: %w", g.Name, p, err)
			}
		}
	}
	for i, d := range a.RunDirs {
		if !filepath.IsAbs(d) {
			return fmt.Errorf("run_dirs: %q is not an absolute path on the daemon's host", d)
		}
		a.RunDirs[i] = filepath.Clean(d)
	}
	return nil
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// grantsFor returns the grants a token's claims match.
func (a *Access) grantsFor(claims map[string]any) []Grant {
	var out []Grant
	for _, g := range a.Grants {
		if claimHas(claims[g.Claim], g.Value) {
			out = append(out, g)
		}
	}
	return out
}

func claimHas(v any, want string) bool {
	switch v := v.(type) {
	case string:
		return v == want
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok && s == want {
				return true
			}
		}
	}
	return false
}

// allowsSandbox says whether g's operator rights reach sandbox.
func (g Grant) allowsSandbox(sandbox string) bool {
	if g.role == RoleAdmin || len(g.Sandboxes) == 0 {
		return true
	}
	for _, p := range g.Sandboxes {
		if ok, _ := path.Match(p, sandbox); ok {
			return true
		}
	}
	return false
}

// allowsRunPath says whether a remote caller may run the blueprint at p.
func (a *Access) allowsRunPath(p string) bool {
	if !filepath.IsAbs(p) {
		return false
	}
	// Symlinks are resolved so a link inside a run dir cannot point out.
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return false
	}
	for _, d := range a.RunDirs {
		rd, err := filepath.EvalSymlinks(d)
		if err != nil {
			continue
		}
		if real == rd || strings.HasPrefix(real, rd+string(filepath.Separator)) {
			return true
		}
	}
	return false
}
