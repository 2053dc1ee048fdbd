// Command debugreplay is the llm-replay plugin started by hand in debug
// mode, as a plugin author runs one under a debugger: it prints the
// NEMOCLAVE_REATTACH_PLUGINS line and serves until killed
// (TestRunReattachesDebugPlugins).
package main

import (
	"github.com/nemoclave/nemoclave/plugins/llm-replay/replayplugin"
	"github.com/nemoclave/nemoclave/sdk/plugin"
)

func main() { plugin.Serve(replayplugin.New(), plugin.WithDebug()) }
