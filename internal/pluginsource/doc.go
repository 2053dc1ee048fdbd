// Package pluginsource is the one grammar of plugin sources, shared by the
// blueprint parser, the plugin manager's resolver, `nemoclave plugin
// install` and the project lock file, so the three can never disagree on
// what a source means.
//
// A source is one of:
//
//   - builtin/<kind>-<name>: shipped beside the nemoclave binary;
//   - <host>/<namespace>/<name>: an installed plugin address
//     (example.com/acme/wordcount), optionally with @<version> where an
//     exact version is meant (the CLI; blueprints use version = "...");
//   - a path to a plugin binary: it starts with /, ./ or ../;
//   - mcp: an MCP server imported as a tools plugin (blueprints only).
//
// It must stay free of dependencies on the rest of nemoclave: it is a leaf
// that both blueprints and host/plugins import.
package pluginsource
