// Command nemoclave-pluginbox is the init stage of a plugin box and
// nothing else: the daemon re-executes it to start each confined plugin.
// It exists beside the nemoclave binary because a small binary with few
// package initialisers starts in a fraction of the time the full CLI
// takes, and a plugin box pays that start on every plugin launch. Run by
// hand it only says what it is.
package main

import (
	"fmt"
	"os"

	"github.com/nemoclave/nemoclave/sandbox/pluginbox"
)

func main() {
	pluginbox.MaybeInit()
	fmt.Fprintln(os.Stderr, "nemoclave-pluginbox starts confined plugins for the nemoclave daemon; it is not run by hand")
	os.Exit(2)
}
