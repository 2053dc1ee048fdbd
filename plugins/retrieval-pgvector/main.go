package main

import "github.com/nemoclave/nemoclave/sdk/plugin"

func main() {
	plugin.Serve(newPlugin())
}
