package main

import (
	"os"

	"github.com/nemoclave/nemoclave/sdk/plugin"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "export" {
		os.Exit(runExport(os.Args[2:], os.Stdout, os.Stderr))
	}
	plugin.Serve(newPlugin())
}
