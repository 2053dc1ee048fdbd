// Package runtime composes a run: it evaluates a blueprint, launches and
// wires its plugins, configures the gateway (inference routes, egress
// policy, agent APIs), creates the sandboxes and starts the agents, and it
// answers every operator question about them afterwards. It is the daemon's
// Backend.
//
// It owns the wiring between packages — blueprints, host/plugins, gateway/*,
// sandbox — and the durable record in host/state. It must not implement any
// of them: when a run needs new behaviour, the owning package grows it.
package runtime
