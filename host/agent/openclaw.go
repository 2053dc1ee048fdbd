package agent

import (
	"encoding/json"
	"errors"
	"strings"
)

// OpenClawPlaceholderKey is the API key OpenClaw's provider is configured
// with. OpenClaw will not call a provider without one; the gateway strips
// whatever the agent sends and injects the real key itself, so no secret
// is ever written inside the sandbox.
const OpenClawPlaceholderKey = "sk-sandbox"

// OpenClawConfig is the OpenClaw configuration (openclaw.json) for an agent
// in a nemoclave sandbox, built from the sandbox's environment (getenv):
// one provider, "nemoclave", speaking Chat Completions to the gateway at
// $OPENAI_BASE_URL with a placeholder key and model (an alias, default
// $NEMOCLAVE_MODEL, else "default") as the only model and the default;
// the workspace; and the blueprint's tools as the MCP server
// $NEMOCLAVE_MCP_URL when the sandbox has one.
func OpenClawConfig(getenv func(string) string, model, workspace string) ([]byte, error) {
	base := strings.TrimRight(getenv("OPENAI_BASE_URL"), "/")
	if base == "" {
		return nil, errors.New("OPENAI_BASE_URL is not set: run this inside a nemoclave sandbox (nemoclave sandbox exec <name> -- nemoclave agent-config openclaw), where it points at the gateway")
	}
	if model == "" {
		model = getenv("NEMOCLAVE_MODEL")
	}
	if model == "" {
		model = "default"
	}
	if workspace == "" {
		workspace = "/workspace"
	}
	type modelEntry struct {
		ID            string   `json:"id"`
		Name          string   `json:"name"`
		Reasoning     bool     `json:"reasoning"`
		Input         []string `json:"input"`
		ContextWindow int      `json:"contextWindow"`
		MaxTokens     int      `json:"maxTokens"`
	}
	cfg := map[string]any{
		"models": map[string]any{
			"mode": "merge",
			"providers": map[string]any{
				"nemoclave": map[string]any{
					"baseUrl": base,
					"apiKey":  OpenClawPlaceholderKey,
					"api":     "openai-completions",
					// The gateway's limits decide; these only size
					// OpenClaw's own context management.
					"models": []modelEntry{{ID: model, Name: model, Input: []string{"text", "image"}, ContextWindow: 128000, MaxTokens: 8192}},
				},
			},
		},
		"agents": map[string]any{
			"defaults": map[string]any{
				"workspace": workspace,
				"model":     map[string]any{"primary": "nemoclave/" + model},
			},
		},
	}
	if mcp := getenv("NEMOCLAVE_MCP_URL"); mcp != "" {
		cfg["mcp"] = map[string]any{"servers": map[string]any{
			"nemoclave": map[string]any{"url": mcp, "transport": "streamable-http"},
		}}
	}
	return json.MarshalIndent(cfg, "", "  ")
}
