// Command nemoclave is the operator CLI and daemon of the nemoclave platform.
// Invoked as "openshell" (a symlink to the same binary) it accepts the
// sandbox, policy, logs, inference, provider and term commands under the
// names users of that CLI already know.
package main

import (
	"os"

	"github.com/nemoclave/nemoclave/host/cli"
)

func main() {
	os.Exit(cli.Main(os.Args))
}
