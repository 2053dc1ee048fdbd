// Package plugin is the go-plugin glue for both sides of a nemoclave plugin.
//
// Plugin authors implement Plugin (usually by embedding Base) plus the
// interface of every kind they declare in Info.Kinds, and call Serve from
// main. The host launches a plugin binary with Launch and talks to it through
// Client. Transport: gRPC only over unix sockets whose peers the kernel
// authenticates (PeerCred; AutoMTLS where SO_PEERCRED is missing), one
// handshake cookie, protocol versions negotiated with VersionedPlugins.
//
// This package owns the handshake, the common Plugin service, the host
// service reached over the GRPCBroker, and kind registration. It must not
// hold discovery, lock files or supervision: those live in the host.
package plugin
