package onboard

import (
	"fmt"
	"sort"
	"strings"
)

// Provider is one choice in the wizard.
type Provider struct {
	ID    string
	Label string
	// Plugin is the builtin LLM plugin serving it.
	Plugin string
	// BaseURL is the default endpoint.
	BaseURL string
	// Credential is the credential name the key is stored under; empty
	// for providers without keys (Ollama, vLLM, replay).
	Credential string
	// DefaultModel is offered first.
	DefaultModel string
	Models       []string
	// Preset is the policy preset the provider's plugin itself would need
	// if it ran sandboxed; it is informational for the starter blueprint.
	Preset string
	// SelfHosted providers run wherever the user put them, so the wizard
	// asks for their URL (BaseURL is only the usual local default).
	SelfHosted bool
}

// Providers is the catalogue, in the order the wizard shows it.
var Providers = []Provider{
	{ID: "nvidia", Label: "NVIDIA hosted endpoints (build.nvidia.com)", Plugin: "builtin/llm-openai",
		BaseURL: "https://integrate.api.nvidia.com/v1", Credential: "NVIDIA_API_KEY",
		DefaultModel: "nvidia/nemotron-3-super-120b-a12b",
		Models:       []string{"nvidia/nemotron-3-super-120b-a12b", "nvidia/llama-3.3-nemotron-super-49b-v1.5", "meta/llama-3.3-70b-instruct"}, Preset: "nvidia"},
	{ID: "openai", Label: "OpenAI", Plugin: "builtin/llm-openai", BaseURL: "https://api.openai.com/v1",
		Credential: "OPENAI_API_KEY", DefaultModel: "gpt-4.1-mini", Models: []string{"gpt-4.1-mini", "gpt-4.1", "o4-mini"}, Preset: "openai"},
	{ID: "anthropic", Label: "Anthropic", Plugin: "builtin/llm-anthropic", BaseURL: "https://api.anthropic.com",
		Credential: "ANTHROPIC_API_KEY", DefaultModel: "claude-sonnet-4-5", Models: []string{"claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1"}, Preset: "anthropic"},
	{ID: "ollama", Label: "Ollama on this machine", Plugin: "builtin/llm-openai", BaseURL: "http://127.0.0.1:11434/v1",
		DefaultModel: "llama3.1", Models: []string{"llama3.1", "qwen2.5", "mistral"}, Preset: "ollama-local", SelfHosted: true},
	{ID: "vllm", Label: "vLLM (OpenAI-compatible server)", Plugin: "builtin/llm-openai", BaseURL: "http://127.0.0.1:8000/v1",
		DefaultModel: "meta-llama/Llama-3.1-8B-Instruct", SelfHosted: true},
	{ID: "nim", Label: "NVIDIA NIM you run (self-hosted container)", Plugin: "builtin/llm-openai", BaseURL: "http://127.0.0.1:8000/v1",
		DefaultModel: "meta/llama-3.1-8b-instruct", SelfHosted: true},
	{ID: "replay", Label: "Offline replay demo (no network, no key)", Plugin: "builtin/llm-replay",
		DefaultModel: "replay", Models: []string{"replay"}},
}

// Lookup returns the provider with id.
func Lookup(id string) (Provider, error) {
	for _, p := range Providers {
		if p.ID == id {
			return p, nil
		}
	}
	ids := make([]string, 0, len(Providers))
	for _, p := range Providers {
		ids = append(ids, p.ID)
	}
	sort.Strings(ids)
	return Provider{}, fmt.Errorf("unknown provider %q: choose one of %s", id, strings.Join(ids, ", "))
}
