// Package listener hardens the gateway's sandbox-facing HTTP listeners
// (inference, agent API) against a sandbox that opens connections and
// never uses them, trickles headers or bodies, or floods the listener.
//
// Each sandbox has its own listeners, so the caps here are per sandbox:
// one sandbox exhausting its cap leaves the daemon's descriptors, the CLI
// socket and every other sandbox's listeners untouched. The egress proxy
// has its own equivalent (egress.Config.MaxConnsPerSandbox).
package listener
