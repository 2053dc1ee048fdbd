// Command nemoclave-plugin-llm-azure-openai is the LLM provider plugin for
// Azure OpenAI deployments, with Microsoft Entra ID tokens (workload or
// managed identity, client secret) or an API key. See README.md.
package main

import (
	"github.com/nemoclave/nemoclave/plugins/llm-azure-openai/azureplugin"
	"github.com/nemoclave/nemoclave/sdk/plugin"
)

func main() {
	plugin.Serve(azureplugin.New())
}
