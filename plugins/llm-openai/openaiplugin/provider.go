package openaiplugin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/nemoclave/nemoclave/internal/secrets"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nemoclave/nemoclave/internal/llmhttp"
	"github.com/nemoclave/nemoclave/internal/wire/openai"
	"github.com/nemoclave/nemoclave/internal/wire/sse"
	"github.com/nemoclave/nemoclave/sdk/llm"
	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/schema"
	"github.com/nemoclave/nemoclave/sdk/status"
)

// Version of the plugin.
const Version = "0.1.0"

// Plugin is the llm-openai plugin.
type Plugin struct {
	plugin.Base
	mu      sync.RWMutex
	cfg     Config
	timeout time.Duration
	hc      *http.Client
	dims    map[string]int // embedding vector length per model
}

// New returns an unconfigured plugin (Configure before use).
func New() *Plugin {
	return &Plugin{cfg: Config{BaseURL: defaultBaseURL}, timeout: 120 * time.Second}
}

// Info describes the plugin.
func (*Plugin) Info() plugin.Info {
	return plugin.Info{
		Name:         "llm-openai",
		Version:      Version,
		Description:  "OpenAI-compatible Chat Completions providers (OpenAI, NVIDIA NIM and hosted endpoints, vLLM, Ollama).",
		Kinds:        []plugin.Kind{plugin.KindLLM, plugin.KindEmbeddings},
		Capabilities: []string{"streaming", "tools", "vision", "embeddings"},
	}
}

// ConfigSchema declares base_url, api_key, headers, timeout and models.
func (*Plugin) ConfigSchema() *schema.Schema { return configSchema() }

// ValidateConfig checks the URL, timeout and headers without network.
func (*Plugin) ValidateConfig(_ context.Context, raw json.RawMessage) []plugin.Diagnostic {
	_, _, diags := parseConfig(raw)
	return diags
}

// Configure applies a config; it may be called again on a blueprint change.
func (p *Plugin) Configure(_ context.Context, cfg plugin.Config, _ plugin.Host) error {
	c, timeout, diags := parseConfig(cfg.JSON)
	if err := plugin.ConfigError("llm-openai", diags); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cfg, p.timeout, p.dims = c, timeout, nil
	p.hc = llmhttp.NewClient(0, timeout)
	return nil
}

func (p *Plugin) snapshot() (Config, time.Duration, *http.Client) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	hc := p.hc
	if hc == nil {
		hc = http.DefaultClient
	}
	return p.cfg, p.timeout, hc
}

// ListModels reports the configured models, or asks GET /models.
func (p *Plugin) ListModels(ctx context.Context) ([]llm.Model, error) {
	cfg, timeout, hc := p.snapshot()
	if len(cfg.Models) > 0 {
		out := make([]llm.Model, len(cfg.Models))
		for i, m := range cfg.Models {
			out[i] = llm.Model{ID: m, Capabilities: []string{"streaming", "tools"}}
		}
		return out, nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := p.do(ctx, hc, cfg, http.MethodGet, "/models", nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var list openai.ModelList
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return nil, status.Errorf(status.Unavailable, "the provider sent an unreadable model list: %v", err)
	}
	out := make([]llm.Model, len(list.Data))
	for i, m := range list.Data {
		out[i] = llm.Model{ID: m.ID, OwnedBy: m.OwnedBy}
	}
	return out, nil
}

// Chat runs one completion.
func (p *Plugin) Chat(ctx context.Context, req *llm.ChatRequest) (*llm.ChatResponse, error) {
	cfg, timeout, hc := p.snapshot()
	body, err := openai.EncodeChatRequest(req, false)
	if err != nil {
		return nil, status.Errorf(status.InvalidArgument, "%v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := p.do(ctx, hc, cfg, http.MethodPost, "/chat/completions", body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var w openai.ChatResponse
	if err := json.NewDecoder(resp.Body).Decode(&w); err != nil {
		return nil, status.Errorf(status.Unavailable, "the provider sent an unreadable response: %v", err)
	}
	return openai.DecodeResponse(&w), nil
}

// ChatStream runs one completion with stream=true and usage reporting.
func (p *Plugin) ChatStream(ctx context.Context, req *llm.ChatRequest, send func(*llm.ChatChunk) error) error {
	cfg, _, hc := p.snapshot()
	body, err := openai.EncodeChatRequest(req, true)
	if err != nil {
		return status.Errorf(status.InvalidArgument, "%v", err)
	}
	resp, err := p.do(ctx, hc, cfg, http.MethodPost, "/chat/completions", body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	r := sse.NewReader(resp.Body)
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return status.Errorf(status.Unavailable, "the provider's stream broke: %s", llmhttp.Redact(err.Error(), cfg.APIKey))
		}
		if bytes.Equal(ev.Data, []byte("[DONE]")) {
			return nil
		}
		var c openai.ChatChunk
		if err := json.Unmarshal(ev.Data, &c); err != nil {
			return status.Errorf(status.Unavailable, "the provider sent a malformed stream chunk: %v", err)
		}
		if len(c.Choices) == 0 && c.Usage == nil {
			var e openai.ErrorBody
			if json.Unmarshal(ev.Data, &e) == nil && e.Error.Message != "" {
				return status.Errorf(status.Unavailable, "the provider reported an error mid-stream: %s", llmhttp.Redact(e.Error.Message, cfg.APIKey))
			}
			continue
		}
		if err := send(openai.DecodeChunk(&c)); err != nil {
			return err
		}
	}
}

// api is how this plugin talks to an OpenAI-compatible server.
func api(cfg Config) llmhttp.Provider {
	return llmhttp.Provider{Key: cfg.APIKey, Code: openai.StatusCode, ErrorMessage: func(raw []byte) string {
		var e openai.ErrorBody
		if json.Unmarshal(raw, &e) == nil {
			return e.Error.Message
		}
		return ""
	}}
}

// setHeaders adds the configured headers and the credential.
func setHeaders(cfg Config) func(http.Header) {
	return func(h http.Header) {
		for k, v := range cfg.Headers {
			h.Set(k, v)
		}
		if cfg.APIKey != "" {
			h.Set("Authorization", "Bearer "+cfg.APIKey)
		}
	}
}

// do sends one request with the credential and extra headers, and turns a
// non-2xx answer into a classified error with the key redacted.
func (p *Plugin) do(ctx context.Context, hc *http.Client, cfg Config, method, path string, body []byte) (*http.Response, error) {
	return api(cfg).Do(ctx, hc, method, secrets.JoinURL(cfg.BaseURL, path), body, func(h http.Header) {
		h.Set("Accept", "application/json, text/event-stream")
		setHeaders(cfg)(h)
	})
}

// Forward sends an OpenAI-dialect request (chat completions, responses)
// unchanged but for the credential. Other dialects are not spoken here.
func (p *Plugin) Forward(ctx context.Context, req *llm.ForwardRequest, send func(*llm.ForwardChunk) error) error {
	if req.Dialect != llm.DialectOpenAI {
		return status.Errorf(status.NotSupported, "llm-openai speaks the openai dialect, not %q", req.Dialect)
	}
	cfg, timeout, hc := p.snapshot()
	if isResponsesPath(req.Path) && !cfg.speaksResponses() {
		return status.Errorf(status.NotSupported, "llm-openai at %s is not configured to speak the Responses API (set responses_api = true if it does)", secrets.ShowURL(cfg.BaseURL))
	}
	if !req.Stream {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	return api(cfg).Forward(ctx, hc, secrets.JoinURL(cfg.BaseURL, req.Path), req, setHeaders(cfg), send)
}

// isResponsesPath reports whether path is the Responses API.
func isResponsesPath(path string) bool {
	return path == "/responses" || strings.HasPrefix(path, "/responses/")
}

var _ llm.Forwarder = (*Plugin)(nil)

var _ llm.Provider = (*Plugin)(nil)

// String never prints the key.
func (p *Plugin) String() string {
	cfg, _, _ := p.snapshot()
	return fmt.Sprintf("llm-openai(%s)", secrets.ShowURL(cfg.BaseURL))
}
