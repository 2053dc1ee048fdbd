// Command nemoclave-plugin-tools-mcp imports any Model Context Protocol
// server as a tools plugin: a stdio server started from a command, or a
// streamable-HTTP server at a URL. Its tools are listed and called through
// the official Go SDK (github.com/modelcontextprotocol/go-sdk), and changes
// the server announces (notifications/tools/list_changed) reach the host
// through tools.Watcher.
//
// A stdio server is a program the blueprint author chose, run with the
// plugin's privileges, so where it runs is explicit: the config's sandbox
// attribute must be "inherit" (the server runs as the plugin's child and
// inherits the plugin's own sandbox: Landlock, seccomp, no_new_privs and the
// egress proxy, all of which survive fork and exec) or "none" (the author
// accepts an unsandboxed server). There is no default; an unset value is a
// configuration error, and "inherit" refuses to start the server unless the
// plugin can see that it is itself confined (no_new_privs and a seccomp
// filter in /proc/self/status). See sandbox.go.
//
// The server's environment is the plugin's own (allow-listed by the host,
// proxy variables included) plus the config's env. HTTP servers are reached
// through the environment's proxy like any other egress.
//
// This package owns the MCP client session and the process it starts. It
// must not start anything else, and it does not interpret tool arguments or
// results beyond converting between MCP and SDK types.
package main
