// Command nemoclave-plugin-llm-anthropic is the LLM provider plugin for
// the Anthropic Messages API. See README.md.
package main

import (
	"github.com/nemoclave/nemoclave/plugins/llm-anthropic/anthropicplugin"
	"github.com/nemoclave/nemoclave/sdk/plugin"
)

func main() {
	plugin.Serve(anthropicplugin.New())
}
