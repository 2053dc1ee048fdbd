// Package pluginbox confines plugin processes: each plugin the daemon
// launches runs in a box of its own, built by the same kernel layers as a
// sandbox (sandbox/confine) but sized for a plugin rather than an agent.
//
// A box is new mount, pid, ipc, uts and cgroup namespaces (plus a user
// namespace when the daemon is not root, and a network namespace unless
// the profile keeps the host network); a tmpfs root holding the system
// directories read-only with host secrets masked, the plugin's binary
// directory, the paths its profile names (read-only or writable) at their
// host paths, a fresh /proc, the basic device nodes and a private /tmp;
// then no capabilities, no_new_privs, Landlock (files as above, TCP
// connect limited to the profile's ports, abstract sockets and signals
// scoped) and the seccomp filter; and a cgroup with the memory, pids and
// cpu limits. The binary is hashed through the very descriptor that is
// executed, so a file swapped after the host hashed it never runs.
//
// NetworkProxy boxes reach the network only through the host: the init
// stage brings up lo in the box's empty network namespace, listens on
// 127.0.0.1 there, sends that listener to the host over a socket pair
// (fd 5) and points the plugin's proxy variables at it; the host serves it
// with Profile.Egress (the daemon's egress gateway under a per-plugin
// policy). The listener belongs to the box's namespace, so nothing but
// the plugin can connect to it, and the plugin can connect nowhere else.
//
// The box plugs into go-plugin as a runner (go-plugin's RunnerFunc):
// go-plugin makes a per-plugin socket directory for the plugin's listener
// and the host's broker listeners, and the box binds exactly that
// directory at the same path, so the handshake and every brokered
// connection work unchanged while no other socket of the host is visible.
//
// Why a package of its own rather than the local driver: a local sandbox
// is a long-lived agent with a workspace, gateway listeners, a PID 1
// reaper, exec and attach, persisted state; a plugin is a single process
// whose stdio go-plugin owns and whose life the plugin manager
// supervises. The box therefore has no init process of its own: its init
// stage builds the view, confines its thread and execs the plugin, which
// becomes PID 1 of the box, so when it dies the kernel kills everything
// it left behind.
//
// The init stage is the Launcher binary re-executed (nemoclave-pluginbox,
// built beside nemoclave; any binary whose main calls MaybeInit first
// works). Files: box.go (profiles and the command), runner.go (the
// go-plugin runner: fork, cgroup, config hand-over), init.go (inside the
// box), mounts.go (the view).
//
// This package must not read the plugin's config or know plugin kinds:
// callers (host/runtime) derive the Profile; host/plugins fills in the
// binary and state directory.
package pluginbox
