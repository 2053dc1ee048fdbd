// Package daemon is the transport between the nemoclave CLI and the
// long-running daemon: the gRPC server on $NEMOCLAVE_HOME/run/nemoclave.sock
// (mode 0600, directory 0700), the client the CLI uses, and starting the
// daemon on demand.
//
// The same API can be served remotely (ListenRemote: TCP with TLS, a
// self-signed certificate pinned by fingerprint or the operator's own).
// Remote callers present OIDC bearer tokens, verified on every call by the
// guard interceptors (auth.go) against the issuer of access.hcl (access.go),
// and act within the role their token's claims are granted. rpcclass.go is
// the one table of what each RPC needs; every mutating and every refused
// call goes to the control audit log (audit.go) with its caller,
// "oidc:<subject>" or "local:<uid>" (peercred.go). The socket's caller keeps
// every right. The client dials a remote daemon after `nemoclave login`
// (remote_client.go).
//
// It owns the socket, the wire and the daemon process's lifecycle. It must
// not hold the runtime: every call is delegated to a Backend (host/runtime),
// which learns the caller with CallerFrom. Backend and Client speak the
// typed messages of host/api/daemon.proto (package host/api/daemonpb), one
// client method per RPC; documents.go converts the two documents the API
// carries as JSON objects (a policy, a driver's detail).
package daemon
