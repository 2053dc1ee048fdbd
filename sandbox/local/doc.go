// Package local is the sandbox driver for one Linux machine. It runs each
// agent behind namespaces (user when unprivileged, mount, pid, net, ipc, uts,
// cgroup), a read-only view of the system, Landlock, seccomp, an empty
// capability set, rlimits and cgroup limits, with a tiny PID 1 reaper in
// front of the agent.
//
// The supervisor (the process that calls New, normally the nemoclave daemon)
// re-executes its own binary into the init stage; MaybeInit must therefore
// be the first call in main() of any binary that uses this package, and in
// TestMain of its tests.
//
// Files by mechanism: driver.go (lifecycle), running.go (a started
// sandbox), exec.go (Exec, Attach), state.go (persisted records), fork.go
// (the thread init stages are forked from), init.go and reaper.go (PID 1),
// mounts.go, protected.go, secrets.go (the filesystem view), network.go,
// protocol.go (the supervisor↔init socket), confine.go (the same
// confinement for an in-pod supervisor). Landlock, seccomp, privileges,
// cgroups and the environment rules live in sandbox/confine, shared with
// the Kubernetes supervisor and the plugin boxes. docs/sandbox.md explains the layers.
//
// This package owns: the init stage and everything it sets up, the driver's
// state directory, and the cgroups it creates below its cgroup parent. It
// must not touch cgroups, mounts or processes it did not create, must not
// import the gateway (it hands listeners back instead), and must never copy
// the supervisor's environment or credentials into a sandbox.
package local
