package agent

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestOpenClawConfig(t *testing.T) {
	env := map[string]string{
		"OPENAI_BASE_URL":   "http://127.0.0.1:4242/v1/",
		"NEMOCLAVE_MCP_URL": "http://127.0.0.1:4243/mcp",
		"NEMOCLAVE_MODEL":   "smart",
	}
	b, err := OpenClawConfig(func(k string) string { return env[k] }, "", "")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Models struct {
			Providers map[string]struct {
				BaseURL string `json:"baseUrl"`
				APIKey  string `json:"apiKey"`
				API     string `json:"api"`
				Models  []struct {
					ID string `json:"id"`
				} `json:"models"`
			} `json:"providers"`
		} `json:"models"`
		Agents struct {
			Defaults struct {
				Workspace string `json:"workspace"`
				Model     struct {
					Primary string `json:"primary"`
				} `json:"model"`
			} `json:"defaults"`
		} `json:"agents"`
		MCP struct {
			Servers map[string]struct {
				URL string `json:"url"`
			} `json:"servers"`
		} `json:"mcp"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	p := cfg.Models.Providers["nemoclave"]
	if p.BaseURL != "http://127.0.0.1:4242/v1" || p.API != "openai-completions" || p.APIKey != OpenClawPlaceholderKey || len(p.Models) != 1 || p.Models[0].ID != "smart" {
		t.Errorf("provider = %+v", p)
	}
	if cfg.Agents.Defaults.Model.Primary != "nemoclave/smart" || cfg.Agents.Defaults.Workspace != "/workspace" {
		t.Errorf("agent defaults = %+v", cfg.Agents.Defaults)
	}
	if cfg.MCP.Servers["nemoclave"].URL != env["NEMOCLAVE_MCP_URL"] {
		t.Errorf("mcp = %+v", cfg.MCP)
	}

	// No MCP server without one; --model wins over $NEMOCLAVE_MODEL.
	delete(env, "NEMOCLAVE_MCP_URL")
	b, _ = OpenClawConfig(func(k string) string { return env[k] }, "fast", "/w")
	if strings.Contains(string(b), `"mcp"`) || !strings.Contains(string(b), `"nemoclave/fast"`) || !strings.Contains(string(b), `"/w"`) {
		t.Errorf("config:\n%s", b)
	}

	// Outside a sandbox it says where to run it.
	_, err = OpenClawConfig(func(string) string { return "" }, "", "")
	if err == nil || !strings.Contains(err.Error(), "inside a nemoclave sandbox") {
		t.Errorf("without OPENAI_BASE_URL: %v", err)
	}
}
