// Package daemon is the transport between the nemoclave CLI and the
// long-running daemon: the gRPC server on $NEMOCLAVE_HOME/run/nemoclave.sock
// (mode 0600, directory 0700), the client the CLI uses, and starting the
// daemon on demand.
//
// It owns the socket, the wire and the daemon process's lifecycle. It must
// not hold the runtime: every call is delegated to a Backend (host/runtime).
package daemon
