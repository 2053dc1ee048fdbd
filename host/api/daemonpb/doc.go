// Package daemonpb is the Go code generated from host/api/daemon.proto
// (`make proto`): the typed control-plane API of the nemoclave daemon —
// its messages and the NemoclaveDaemon gRPC client and server — which the
// CLI, the dashboard and remote clients compile against. It owns nothing
// by hand but this file; edit the .proto and regenerate.
package daemonpb
