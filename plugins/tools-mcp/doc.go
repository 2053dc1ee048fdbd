// Command nemoclave-plugin-tools-mcp imports any Model Context Protocol
// server as a tools plugin: a stdio server started from a command, or a
// streamable-HTTP server at a URL. Its tools are listed and called through
// the official Go SDK (github.com/modelcontextprotocol/go-sdk), and changes
// the server announces (notifications/tools/list_changed) reach the host
// through tools.Watcher.
//
// A stdio server is a program the blueprint author chose, so where it runs
// is explicit: the config's sandbox attribute has no default, and an unset
// value is a configuration error.
//
//   - "local" runs the server in a sandbox of its own, made with the local
//     sandbox driver (sandbox/local): namespaces, a read-only system view
//     plus the read_only paths, a /workspace of its own (or the configured
//     one), Landlock, seccomp, no capabilities, cgroup limits. Its only
//     network is an egress listener inside its namespace that this plugin
//     relays to its own egress proxy, so the server reaches what the
//     plugin's policy allows. The driver re-executes this binary as the
//     sandbox's init stage, which is why main calls local.MaybeInit first.
//     A plugin that is itself sandboxed cannot create namespaces; there,
//     use "inherit".
//   - "inherit" runs the server as the plugin's child, inside the plugin's
//     own sandbox (Landlock, seccomp and no_new_privs survive fork and
//     exec); it refuses to start the server unless the plugin can see that
//     it is itself confined (see sandbox.go).
//   - "none" runs the server unconfined with the plugin's privileges.
//
// The server's environment is the plugin's own (allow-listed by the host,
// proxy variables included) plus the config's env. HTTP servers are reached
// through the environment's proxy like any other egress.
//
// This package owns the MCP client session, the process it starts and the
// local sandboxes it creates in its state directory. It must not start
// anything else, and it does not interpret tool arguments or
// results beyond converting between MCP and SDK types.
package main
