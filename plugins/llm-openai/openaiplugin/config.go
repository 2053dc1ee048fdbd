package openaiplugin

import (
	"encoding/json"
	"net/url"
	"strings"
	"time"

	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/schema"
)

// Config is the plugin's blueprint config block.
type Config struct {
	// BaseURL is the API root including /v1 (https://api.openai.com/v1,
	// https://integrate.api.nvidia.com/v1, http://localhost:11434/v1).
	BaseURL string `json:"base_url"`
	// APIKey is resolved by the host from credential("NAME"); empty for
	// servers without authentication (local vLLM, Ollama).
	APIKey string `json:"api_key"`
	// Headers are added to every request (organisation, project ids).
	Headers map[string]string `json:"headers"`
	// Timeout bounds a non-streaming request, and a streaming request
	// until the response headers arrive.
	Timeout string `json:"timeout"`
	// Models overrides GET /models for servers that do not list models.
	Models []string `json:"models"`
	// EmbeddingModel is used for embeddings requests that name no model.
	EmbeddingModel string `json:"embedding_model"`
	// ResponsesAPI says the server speaks POST /responses, so the gateway
	// forwards the agent's Responses requests to it unchanged instead of
	// translating them to chat completions. Unset: true for
	// api.openai.com, false for every other server.
	ResponsesAPI *bool `json:"responses_api"`
}

// speaksResponses reports whether Responses requests are forwarded.
func (c Config) speaksResponses() bool {
	if c.ResponsesAPI != nil {
		return *c.ResponsesAPI
	}
	u, err := url.Parse(c.BaseURL)
	return err == nil && strings.EqualFold(u.Hostname(), "api.openai.com")
}

const defaultBaseURL = "https://api.openai.com/v1"

func configSchema() *schema.Schema {
	return &schema.Schema{Block: schema.Block{
		Description: "An OpenAI-compatible Chat Completions API: OpenAI, NVIDIA hosted endpoints and NIM, vLLM, Ollama.",
		Attributes: []schema.Attribute{
			{Name: "base_url", Default: json.RawMessage(`"` + defaultBaseURL + `"`), Description: "API root including /v1."},
			{Name: "api_key", Credential: true, Sensitive: true, Description: `API key as credential("NAME"); omit for servers without authentication.`},
			{Name: "headers", Type: "map(string)", Description: "Extra headers sent with every request."},
			{Name: "timeout", Default: json.RawMessage(`"120s"`), Description: "Bound on a non-streaming request, and on a streaming request until its headers arrive (Go duration)."},
			{Name: "models", Type: "list(string)", Description: "Models to report instead of asking GET /models."},
			{Name: "responses_api", Type: "bool", Description: "The server speaks the Responses API (POST /responses): the gateway forwards agents' /v1/responses requests to it unchanged (but for model and key) instead of translating them to chat completions. Default: true for api.openai.com, false for other servers."},
			{Name: "embedding_model", Description: "Embeddings model for requests that name none (this plugin also serves the embeddings kind through POST /embeddings)."},
		},
	}}
}

func parseConfig(raw json.RawMessage) (Config, time.Duration, []plugin.Diagnostic) {
	c := Config{BaseURL: defaultBaseURL, Timeout: "120s"}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &c); err != nil {
			return c, 0, []plugin.Diagnostic{plugin.Errorf(nil, "config is not valid JSON for llm-openai: %v", err)}
		}
	}
	var diags []plugin.Diagnostic
	if c.BaseURL == "" {
		c.BaseURL = defaultBaseURL
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		diags = append(diags, plugin.Errorf([]string{"base_url"}, "base_url %q must be an http(s) URL such as %s", c.BaseURL, defaultBaseURL))
	}
	if c.Timeout == "" {
		c.Timeout = "120s"
	}
	d, err := time.ParseDuration(c.Timeout)
	if err != nil || d <= 0 {
		diags = append(diags, plugin.Errorf([]string{"timeout"}, "timeout %q must be a positive Go duration such as 60s", c.Timeout))
	}
	for k := range c.Headers {
		if strings.EqualFold(k, "Authorization") {
			diags = append(diags, plugin.Errorf([]string{"headers", k}, "set the key with api_key = credential(\"NAME\"), not an Authorization header, so it is never written in a blueprint"))
		}
	}
	if strings.ContainsAny(c.APIKey, "\r\n") {
		diags = append(diags, plugin.Errorf([]string{"api_key"}, "api_key contains a line break; re-add the credential without it"))
	}
	return c, d, diags
}
