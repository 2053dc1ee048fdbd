// Package plugins is the host's plugin manager: it finds plugin binaries,
// installs them with a lock file, launches them with a verified checksum and
// an allow-listed environment, and supervises them (health checks, restart
// with backoff, no orphans).
//
// It owns discovery (builtin plugins beside the nemoclave binary,
// $NEMOCLAVE_HOME/plugins, explicit paths), plugins.lock.json, the plugin
// environment, per-plugin state directories and the Supervised handle that
// the runtime and the gateway call through.
//
// It must not speak the plugin protocol itself (that is sdk/plugin, reached
// through plugin.Launch) nor know blueprints: callers hand it a source
// string, a config as JSON and wirings. It must not touch the host's
// environment on behalf of a plugin: only the allow list in env.go reaches a
// plugin process.
package plugins
