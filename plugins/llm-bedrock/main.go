// Command nemoclave-plugin-llm-bedrock is the LLM provider plugin for
// Amazon Bedrock's Converse API, signed with the AWS SDK's credential
// chain. See README.md.
package main

import (
	"github.com/nemoclave/nemoclave/plugins/llm-bedrock/bedrockplugin"
	"github.com/nemoclave/nemoclave/sdk/plugin"
)

func main() {
	plugin.Serve(bedrockplugin.New())
}
