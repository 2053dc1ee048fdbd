// Command nemoclave is the operator CLI and daemon of the nemoclave platform.
// Invoked as "openshell" (a symlink to the same binary) it accepts the
// sandbox, policy, logs, inference, provider and term commands under the
// names users of that CLI already know.
package main

import (
	"os"

	"github.com/nemoclave/nemoclave/host/cli"
	"github.com/nemoclave/nemoclave/host/internal/termquiet"
	"github.com/nemoclave/nemoclave/sandbox/local"
	"github.com/nemoclave/nemoclave/sandbox/pluginbox"
)

func main() {
	// Before anything reads the environment (see termquiet).
	termquiet.Restore()
	// The sandbox driver re-executes this binary as a sandbox's init stage;
	// in that case this never returns.
	local.MaybeInit()
	// Likewise for a plugin box, the init stage of a confined plugin.
	pluginbox.MaybeInit()
	os.Exit(cli.Main(os.Args))
}
