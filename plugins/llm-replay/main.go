// Command nemoclave-plugin-llm-replay answers from a cassette of recorded
// conversations (offline demos and tests) or records one from an
// OpenAI-compatible provider. See README.md.
package main

import (
	"github.com/nemoclave/nemoclave/plugins/llm-replay/replayplugin"
	"github.com/nemoclave/nemoclave/sdk/plugin"
)

func main() {
	plugin.Serve(replayplugin.New())
}
