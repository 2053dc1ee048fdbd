package daemon

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Class is what an RPC needs from its caller.
type Class struct {
	// Min is the least role that may call it.
	Min Role
	// Public methods need no token (LoginInfo: how to get one).
	Public bool
	// Mutating calls are written to the control audit log with the caller.
	Mutating bool
	// Sandboxed operator calls name a sandbox that the caller's grant
	// must cover (its patterns); the handler or the interceptor checks it.
	Sandboxed bool
}

// rpcClasses is THE table of what every daemon RPC needs. A method that is
// not in it is refused to every remote caller (fail closed), and
// TestOIDC_EveryRPCClassified fails, so whoever adds an RPC classifies it.
var rpcClasses = map[string]Class{
	"Ping":            {Min: RoleViewer},
	"LoginInfo":       {Public: true},
	"ListSandboxes":   {Min: RoleViewer},
	"GetSandbox":      {Min: RoleViewer},
	"Logs":            {Min: RoleViewer},
	"GetPolicy":       {Min: RoleViewer},
	"ListApprovals":   {Min: RoleViewer},
	"WatchApprovals":  {Min: RoleViewer},
	"InferenceStatus": {Min: RoleViewer},
	"Run":             {Min: RoleOperator, Mutating: true, Sandboxed: true},
	"DeleteSandbox":   {Min: RoleOperator, Mutating: true, Sandboxed: true},
	"Exec":            {Min: RoleOperator, Mutating: true, Sandboxed: true},
	// Attach types into a running agent: as Exec.
	"Attach":         {Min: RoleOperator, Mutating: true, Sandboxed: true},
	"AnswerApproval": {Min: RoleOperator, Mutating: true, Sandboxed: true},
	"InferenceSet":   {Min: RoleOperator, Mutating: true, Sandboxed: true},
	"SetPolicy":      {Min: RoleAdmin, Mutating: true},
	"Shutdown":       {Min: RoleAdmin, Mutating: true},
}

// methodName turns "/nemoclave.daemon.v1.Daemon/Run" into "Run".
func methodName(full string) string { return full[strings.LastIndex(full, "/")+1:] }

// Caller is who makes a call. The unix socket's caller is its owner and
// holds every right; a remote caller holds the grants its token matched.
type Caller struct {
	// Subject names the caller in audit records: "local:<uid>" or
	// "oidc:<subject claim>".
	Subject string
	Local   bool
	// expiry is when a remote caller's token expires: a stream it opened
	// ends then (guard.stream).
	expiry time.Time
	grants []Grant
	access *Access
}

// Role is the highest role the caller holds.
func (c *Caller) Role() Role {
	if c.Local {
		return RoleAdmin
	}
	r := RoleNone
	for _, g := range c.grants {
		r = max(r, g.role)
	}
	return r
}

// MaySandbox says whether the caller may act (operator class) on sandbox.
func (c *Caller) MaySandbox(sandbox string) bool {
	if c.Local {
		return true
	}
	for _, g := range c.grants {
		if g.role >= RoleOperator && g.allowsSandbox(sandbox) {
			return true
		}
	}
	return false
}

// mayAllSandboxes says whether some operator grant covers every sandbox
// name (needed for Run, whose sandbox names come from the blueprint).
func (c *Caller) mayAllSandboxes() bool {
	if c.Local {
		return true
	}
	for _, g := range c.grants {
		if g.role == RoleAdmin || (g.role == RoleOperator && len(g.Sandboxes) == 0) {
			return true
		}
	}
	return false
}

// CheckSandbox returns a PermissionDenied-worthy error when the caller may
// not act on sandbox, and notes the sandbox for the audit record.
func (c *Caller) CheckSandbox(ctx context.Context, sandbox string) error {
	if ci := callInfoFrom(ctx); ci != nil && sandbox != "" {
		ci.sandbox = sandbox
	}
	if c.MaySandbox(sandbox) {
		return nil
	}
	return fmt.Errorf("%s may not act on sandbox %q: no operator grant in the daemon's access.hcl covers it (ask an admin to add it to a grant's sandboxes)", c.Subject, sandbox)
}

type callerKey struct{}

// callInfo is what the interceptor learns during a call, for its audit record.
type callInfo struct {
	caller  *Caller
	sandbox string
}

// CallerFrom returns the caller of the RPC that ctx belongs to, or nil
// outside an RPC. The runtime uses it to name the operator of an approval.
func CallerFrom(ctx context.Context) *Caller {
	if ci := callInfoFrom(ctx); ci != nil {
		return ci.caller
	}
	return nil
}

func callInfoFrom(ctx context.Context) *callInfo {
	ci, _ := ctx.Value(callerKey{}).(*callInfo)
	return ci
}

func withCaller(ctx context.Context, c *Caller) (context.Context, *callInfo) {
	ci := &callInfo{caller: c}
	return context.WithValue(ctx, callerKey{}, ci), ci
}
