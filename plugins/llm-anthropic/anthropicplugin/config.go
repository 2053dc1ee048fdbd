package anthropicplugin

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
	// BaseURL is the API root without /v1 (https://api.anthropic.com).
	BaseURL string `json:"base_url"`
	// APIKey is resolved by the host from credential("NAME").
	APIKey string `json:"api_key"`
	// AnthropicVersion is sent as the anthropic-version header.
	AnthropicVersion string `json:"anthropic_version"`
	// Headers are added to every request (anthropic-beta …).
	Headers map[string]string `json:"headers"`
	// Timeout bounds a non-streaming request, and a streaming request
	// until the response headers arrive.
	Timeout string `json:"timeout"`
	// Models overrides GET /v1/models.
	Models []string `json:"models"`
}

const (
	defaultBaseURL = "https://api.anthropic.com"
	defaultVersion = "2023-06-01"
)

func configSchema() *schema.Schema {
	return &schema.Schema{Block: schema.Block{
		Description: "The Anthropic Messages API.",
		Attributes: []schema.Attribute{
			{Name: "base_url", Default: json.RawMessage(`"` + defaultBaseURL + `"`), Description: "API root without /v1."},
			{Name: "api_key", Required: true, Credential: true, Sensitive: true, Description: `API key as credential("ANTHROPIC_API_KEY").`},
			{Name: "anthropic_version", Default: json.RawMessage(`"` + defaultVersion + `"`), Description: "anthropic-version header."},
			{Name: "headers", Type: "map(string)", Description: "Extra headers sent with every request (e.g. anthropic-beta)."},
			{Name: "timeout", Default: json.RawMessage(`"120s"`), Description: "Bound on a non-streaming request, and on a streaming request until its headers arrive (Go duration)."},
			{Name: "models", Type: "list(string)", Description: "Models to report instead of asking GET /v1/models."},
		},
	}}
}

func parseConfig(raw json.RawMessage) (Config, time.Duration, []plugin.Diagnostic) {
	c := Config{BaseURL: defaultBaseURL, AnthropicVersion: defaultVersion, Timeout: "120s"}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &c); err != nil {
			return c, 0, []plugin.Diagnostic{plugin.Errorf(nil, "config is not valid JSON for llm-anthropic: %v", err)}
		}
	}
	var diags []plugin.Diagnostic
	if c.BaseURL == "" {
		c.BaseURL = defaultBaseURL
	}
	c.BaseURL = strings.TrimSuffix(strings.TrimRight(c.BaseURL, "/"), "/v1")
	if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		diags = append(diags, plugin.Errorf([]string{"base_url"}, "base_url %q must be an http(s) URL such as %s", c.BaseURL, defaultBaseURL))
	}
	if c.AnthropicVersion == "" {
		c.AnthropicVersion = defaultVersion
	}
	if c.Timeout == "" {
		c.Timeout = "120s"
	}
	d, err := time.ParseDuration(c.Timeout)
	if err != nil || d <= 0 {
		diags = append(diags, plugin.Errorf([]string{"timeout"}, "timeout %q must be a positive Go duration such as 60s", c.Timeout))
	}
	for k := range c.Headers {
		if strings.EqualFold(k, "x-api-key") || strings.EqualFold(k, "Authorization") {
			diags = append(diags, plugin.Errorf([]string{"headers", k}, "set the key with api_key = credential(\"NAME\"), not a header, so it is never written in a blueprint"))
		}
	}
	if strings.ContainsAny(c.APIKey, "\r\n") {
		diags = append(diags, plugin.Errorf([]string{"api_key"}, "api_key contains a line break; re-add the credential without it"))
	}
	return c, d, diags
}
