package main

import (
	"encoding/json"
	"net/url"
	"strings"
	"time"

	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/schema"
)

const (
	defaultBaseURL = "https://api.openai.com/v1"
	defaultModel   = "text-embedding-3-small"
	// maxBatch is OpenAI's own limit on inputs per request.
	maxBatch = 2048
)

type config struct {
	// BaseURL is the API root including /v1.
	BaseURL string `json:"base_url"`
	// APIKey is resolved by the host from credential("NAME"); empty for
	// servers without authentication (Ollama, a local vLLM).
	APIKey string `json:"api_key"`
	Model  string `json:"model"`
	// Dimensions asks the model for shorter vectors (text-embedding-3-*,
	// some NIM models) and is reported by Dimensions without a request.
	// Zero sends nothing and learns the size from the first response.
	Dimensions int               `json:"dimensions"`
	BatchSize  int               `json:"batch_size"`
	Headers    map[string]string `json:"headers"`
	Timeout    string            `json:"timeout"`
	MaxRetries int               `json:"max_retries"`

	timeout time.Duration
}

func configSchema() *schema.Schema {
	return &schema.Schema{Block: schema.Block{
		Description: "An OpenAI-compatible embeddings API (POST /v1/embeddings): OpenAI, NVIDIA, Ollama, vLLM.",
		Attributes: []schema.Attribute{
			{Name: "base_url", Type: "string", Default: json.RawMessage(`"` + defaultBaseURL + `"`), Description: "API root including /v1 (http://localhost:11434/v1 for Ollama)."},
			{Name: "api_key", Type: "string", Credential: true, Sensitive: true, Description: `API key as credential("NAME"); omit for servers without authentication.`},
			{Name: "model", Type: "string", Default: json.RawMessage(`"` + defaultModel + `"`), Description: "Embedding model used when a request names none."},
			{Name: "dimensions", Type: "number", Default: json.RawMessage("0"), Description: "Vector length to ask for (models that support shortening); 0 uses the model's own size."},
			{Name: "batch_size", Type: "number", Default: json.RawMessage("128"), Description: "Inputs per request (1-2048); lower it for servers with small request limits."},
			{Name: "headers", Type: "map(string)", Description: "Extra headers sent with every request (organisation, project)."},
			{Name: "timeout", Type: "string", Default: json.RawMessage(`"60s"`), Description: "Bound on one request (Go duration)."},
			{Name: "max_retries", Type: "number", Default: json.RawMessage("2"), Description: "Retries of a request answered 429 or 5xx, or not answered."},
		},
	}}
}

func parseConfig(raw json.RawMessage) (config, []plugin.Diagnostic) {
	c := config{BaseURL: defaultBaseURL, Model: defaultModel, BatchSize: 128, Timeout: "60s", MaxRetries: 2}
	if len(raw) > 0 {
		var in struct {
			BaseURL    *string           `json:"base_url"`
			APIKey     *string           `json:"api_key"`
			Model      *string           `json:"model"`
			Dimensions *float64          `json:"dimensions"`
			BatchSize  *float64          `json:"batch_size"`
			Headers    map[string]string `json:"headers"`
			Timeout    *string           `json:"timeout"`
			MaxRetries *float64          `json:"max_retries"`
		}
		if err := json.Unmarshal(raw, &in); err != nil {
			return c, []plugin.Diagnostic{plugin.Errorf(nil, "config is not valid JSON for embeddings-openai: %v", err)}
		}
		for dst, src := range map[*string]*string{&c.BaseURL: in.BaseURL, &c.APIKey: in.APIKey, &c.Model: in.Model, &c.Timeout: in.Timeout} {
			if src != nil && *src != "" {
				*dst = *src
			}
		}
		for dst, src := range map[*int]*float64{&c.Dimensions: in.Dimensions, &c.BatchSize: in.BatchSize, &c.MaxRetries: in.MaxRetries} {
			if src != nil {
				*dst = int(*src)
			}
		}
		c.Headers = in.Headers
	}
	var ds []plugin.Diagnostic
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		ds = append(ds, plugin.Errorf([]string{"base_url"}, "base_url %q must be an http(s) URL such as %s", c.BaseURL, defaultBaseURL))
	}
	if c.Dimensions < 0 || c.Dimensions > 65536 {
		ds = append(ds, plugin.Errorf([]string{"dimensions"}, "dimensions must be between 0 and 65536, got %d", c.Dimensions))
	}
	if c.BatchSize < 1 || c.BatchSize > maxBatch {
		ds = append(ds, plugin.Errorf([]string{"batch_size"}, "batch_size must be between 1 and %d, got %d", maxBatch, c.BatchSize))
	}
	if c.MaxRetries < 0 || c.MaxRetries > 10 {
		ds = append(ds, plugin.Errorf([]string{"max_retries"}, "max_retries must be between 0 and 10, got %d", c.MaxRetries))
	}
	d, err := time.ParseDuration(c.Timeout)
	if err != nil || d <= 0 {
		ds = append(ds, plugin.Errorf([]string{"timeout"}, "timeout %q must be a positive Go duration such as 60s", c.Timeout))
	}
	c.timeout = d
	for k := range c.Headers {
		if strings.EqualFold(k, "Authorization") {
			ds = append(ds, plugin.Errorf([]string{"headers", k}, `set the key with api_key = credential("NAME"), not an Authorization header, so it is never written in a blueprint`))
		}
	}
	if strings.ContainsAny(c.APIKey, "\r\n") {
		ds = append(ds, plugin.Errorf([]string{"api_key"}, "api_key contains a line break; re-add the credential without it"))
	}
	return c, ds
}
