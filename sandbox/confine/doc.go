// Package confine is the kernel confinement every sandboxed process gets,
// whoever builds its sandbox: the local driver's init stage, the Kubernetes
// driver's in-pod supervisor and the plugin box (sandbox/pluginbox) all
// call it, so an agent, an in-pod agent and a plugin sit behind the same
// layers.
//
// Files by mechanism: landlock.go (the ABI decision and the ruleset),
// seccomp.go (the filter: an arch/argument guard plus a deny list),
// privileges.go (capabilities, securebits, no_new_privs, uid switch,
// rlimits), env.go (which variables a sandbox may be given), thread.go
// (all of it applied to one OS thread, for a supervisor that forks from
// it), cgroup.go and setup.go (cgroup limits, and their delegation to an
// ordinary user by `nemoclave setup --user`), mounts.go (the system
// directories, secret masks and bind-mount primitive every sandbox root is
// built from), fork.go (the one locked thread confined children are forked
// from, so the parent-death signal holds).
//
// Everything here acts on the calling thread only (Landlock domains,
// seccomp filters and capabilities are per thread on Linux): callers lock
// a dedicated OS thread, confine it and fork from it. This package builds
// no namespaces and builds no root filesystem; assembling one from the
// pieces in mounts.go is the callers' part.
package confine
