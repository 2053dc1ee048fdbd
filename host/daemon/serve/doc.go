// Package serve is the daemon's composition root: it builds what
// `nemoclave daemon` runs (the credential stores, the sandbox drivers,
// tracing, the runtime with its gateway and state, the socket and remote
// API of host/daemon, the metrics endpoint and, in the kubernetes build,
// the AgentEnvironment controller) from a Config, and serves until its
// context ends or a client asks it to stop.
//
// host/daemon is the transport and must not hold the runtime; host/cli
// only turns flags into a Config. The kubernetes driver, the Secret
// credential backend and the controller are compiled in with
// -tags kubernetes only (kubernetes_on.go); the default build refuses a
// configuration that asks for a cluster (kubernetes_off.go).
package serve
