// Package egress is the egress gateway: the forward proxy that is a
// sandbox's only way out to the internet (HTTP_PROXY / HTTPS_PROXY inside
// the sandbox point at a listener Serve owns).
//
// It owns, per request and in this order: canonicalising the target
// (canon.go), matching it against the sandbox's effective network policy
// with no DNS lookup before the decision (sandbox.go, policy.Lookup), for
// CONNECT reading the TLS ClientHello and requiring SNI == target
// (clienthello.go, connect.go), resolving and dropping every address a
// sandbox must not reach (resolve.go), then dialling the vetted address,
// directly or through a corporate proxy (upstream.go), and relaying with
// caps (tunnel.go). Endpoints that opt in are TLS-terminated with a
// per-sandbox CA (ca.go, inspect.go) so method, path and query rules apply
// (forward.go, pathnorm.go). Plain http:// requests go through plain.go.
// Unknown hosts are denied or held for an operator (approvals.go). Every
// decision is one JSON line in the audit log (audit.go) and a Prometheus
// sample (metrics.go). docs/egress.md is the user-facing description.
//
// It must not touch: the sandbox (it never creates namespaces or listeners:
// the driver hands them over), the policy's storage (a persisted approval is
// handed to Config.OnPersist), credentials (the inference gateway injects
// those; egress never adds auth to a request), or the global Prometheus
// registry. It never fails open: no policy, an invalid policy, an unreadable
// ClientHello or an unanswered approval all mean "denied".
package egress
