// Command nemoclave-plugin-llm-openai is the LLM provider plugin for
// OpenAI-compatible APIs (OpenAI, NVIDIA hosted endpoints and NIM, vLLM,
// Ollama). See README.md.
package main

import (
	"github.com/nemoclave/nemoclave/plugins/llm-openai/openaiplugin"
	"github.com/nemoclave/nemoclave/sdk/plugin"
)

func main() {
	plugin.Serve(openaiplugin.New())
}
