package plugin

import goplugin "github.com/hashicorp/go-plugin"

// ProtocolVersion is the plugin protocol major version this SDK speaks. It
// changes only with a new proto package (v2); hosts negotiate it through
// go-plugin's VersionedPlugins.
const ProtocolVersion = 1

// pluginName is the single go-plugin plugin name in every version set.
const pluginName = "nemoclave"

// Handshake is shared by host and plugins. The cookie is not a secret: it
// only stops someone from running a plugin binary by hand by mistake.
var Handshake = goplugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "NEMOCLAVE_PLUGIN_MAGIC_COOKIE",
	MagicCookieValue: "6b1f6e0c2d8a4e3f9b7c5a1d0e2f4a6c",
}

// versionedPlugins is the set of protocol versions this SDK serves and
// accepts, each mapping the plugin name to its gRPC glue.
func versionedPlugins(impl Plugin) map[int]goplugin.PluginSet {
	return map[int]goplugin.PluginSet{
		ProtocolVersion: {pluginName: &grpcPlugin{impl: impl}},
	}
}
