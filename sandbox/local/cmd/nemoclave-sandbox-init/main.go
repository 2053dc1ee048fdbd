// Command nemoclave-sandbox-init is the init stage of a local sandbox and
// nothing else: the driver re-executes it as PID 1 of each sandbox, where
// it stays for the sandbox's life (reaping, draining the agent's output,
// starting exec sessions). It exists beside the nemoclave binary because a
// small binary with few package initialisers holds a fraction of the
// memory the full CLI does, and every running sandbox holds one. Run by
// hand it only says what it is.
package main

import (
	"fmt"
	"os"

	"github.com/nemoclave/nemoclave/sandbox/local"
)

func main() {
	local.MaybeInit()
	fmt.Fprintln(os.Stderr, "nemoclave-sandbox-init is the init stage of nemoclave's local sandboxes; it is not run by hand")
	os.Exit(2)
}
