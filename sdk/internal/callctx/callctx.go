// Package callctx carries what the SDK knows about one call to a plugin
// (the caller's sandbox) in its context, from the kind adapters that
// decode the request to plugin.Logger, which tags the call's log lines.
package callctx

import "context"

type sandboxKey struct{}

// WithSandbox returns ctx naming sb as the calling sandbox ("" leaves ctx
// as it is).
func WithSandbox(ctx context.Context, sb string) context.Context {
	if sb == "" {
		return ctx
	}
	return context.WithValue(ctx, sandboxKey{}, sb)
}

// Sandbox is the calling sandbox ctx names, or "".
func Sandbox(ctx context.Context) string {
	sb, _ := ctx.Value(sandboxKey{}).(string)
	return sb
}
