package anthropicplugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/nemoclave/nemoclave/internal/secrets"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/nemoclave/nemoclave/internal/llmhttp"
	"github.com/nemoclave/nemoclave/internal/wire/anthropic"
	"github.com/nemoclave/nemoclave/internal/wire/sse"
	"github.com/nemoclave/nemoclave/sdk/llm"
	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/schema"
	"github.com/nemoclave/nemoclave/sdk/status"
)

// Version of the plugin.
const Version = "0.1.0"

// Plugin is the llm-anthropic plugin.
type Plugin struct {
	plugin.Base
	mu      sync.RWMutex
	cfg     Config
	timeout time.Duration
	hc      *http.Client
}

// New returns an unconfigured plugin (Configure before use).
func New() *Plugin {
	return &Plugin{cfg: Config{BaseURL: defaultBaseURL, AnthropicVersion: defaultVersion}, timeout: 120 * time.Second}
}

// Info describes the plugin.
func (*Plugin) Info() plugin.Info {
	return plugin.Info{
		Name:         "llm-anthropic",
		Version:      Version,
		Description:  "The Anthropic Messages API (tools, streaming, prompt-cache usage).",
		Kinds:        []plugin.Kind{plugin.KindLLM},
		Capabilities: []string{"streaming", "tools", "vision"},
	}
}

// ConfigSchema declares the config block.
func (*Plugin) ConfigSchema() *schema.Schema { return configSchema() }

// ValidateConfig checks the config without network.
func (*Plugin) ValidateConfig(_ context.Context, raw json.RawMessage) []plugin.Diagnostic {
	_, _, diags := parseConfig(raw)
	return diags
}

// Configure applies a config.
func (p *Plugin) Configure(_ context.Context, cfg plugin.Config, _ plugin.Host) error {
	c, timeout, diags := parseConfig(cfg.JSON)
	if err := plugin.ConfigError("llm-anthropic", diags); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cfg, p.timeout, p.hc = c, timeout, llmhttp.NewClient(0, timeout)
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

// ListModels reports the configured models, or asks GET /v1/models.
func (p *Plugin) ListModels(ctx context.Context) ([]llm.Model, error) {
	cfg, timeout, hc := p.snapshot()
	if len(cfg.Models) > 0 {
		out := make([]llm.Model, len(cfg.Models))
		for i, m := range cfg.Models {
			out[i] = llm.Model{ID: m, OwnedBy: "anthropic", Capabilities: []string{"streaming", "tools"}}
		}
		return out, nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := p.do(ctx, hc, cfg, http.MethodGet, "/v1/models?limit=1000", nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var list anthropic.ModelList
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return nil, status.Errorf(status.Unavailable, "the provider sent an unreadable model list: %v", err)
	}
	out := make([]llm.Model, len(list.Data))
	for i, m := range list.Data {
		out[i] = llm.Model{ID: m.ID, OwnedBy: "anthropic", Capabilities: []string{"streaming", "tools"}}
	}
	return out, nil
}

// Chat runs one message.
func (p *Plugin) Chat(ctx context.Context, req *llm.ChatRequest) (*llm.ChatResponse, error) {
	cfg, timeout, hc := p.snapshot()
	body, err := anthropic.EncodeRequest(req, false)
	if err != nil {
		return nil, status.Errorf(status.InvalidArgument, "%v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := p.do(ctx, hc, cfg, http.MethodPost, "/v1/messages", body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var w anthropic.Response
	if err := json.NewDecoder(resp.Body).Decode(&w); err != nil {
		return nil, status.Errorf(status.Unavailable, "the provider sent an unreadable response: %v", err)
	}
	return anthropic.DecodeResponse(&w), nil
}

// ChatStream runs one message with stream=true.
func (p *Plugin) ChatStream(ctx context.Context, req *llm.ChatRequest, send func(*llm.ChatChunk) error) error {
	cfg, _, hc := p.snapshot()
	body, err := anthropic.EncodeRequest(req, true)
	if err != nil {
		return status.Errorf(status.InvalidArgument, "%v", err)
	}
	resp, err := p.do(ctx, hc, cfg, http.MethodPost, "/v1/messages", body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	r := sse.NewReader(resp.Body)
	var dec anthropic.StreamDecoder
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
		chunk, done, err := dec.Decode(ev.Data)
		if err != nil {
			return status.Errorf(status.CodeOf(err), "%s", llmhttp.Redact(messageOf(err), cfg.APIKey))
		}
		if done {
			return nil
		}
		if chunk != nil {
			if err := send(chunk); err != nil {
				return err
			}
		}
	}
}

// api is how this plugin talks to the Messages API; 529 (overloaded)
// is worth a fallback like any outage.
func api(cfg Config) llmhttp.Provider {
	return llmhttp.Provider{Key: cfg.APIKey, ErrorMessage: func(raw []byte) string {
		var e anthropic.ErrorBody
		if json.Unmarshal(raw, &e) == nil && e.Error.Message != "" {
			return e.Error.Type + ": " + e.Error.Message
		}
		return ""
	}, Code: func(httpStatus int) status.Code {
		if httpStatus == 529 {
			return status.Unavailable
		}
		return anthropic.StatusCode(httpStatus)
	}}
}

// setHeaders adds the configured headers, the API version unless the
// agent chose one, and the credential. Configured anthropic-beta values
// are added to the agent's rather than replacing them.
func setHeaders(cfg Config) func(http.Header) {
	return func(h http.Header) {
		agentBeta := h.Get("anthropic-beta")
		for k, v := range cfg.Headers {
			h.Set(k, v)
		}
		if b := h.Get("anthropic-beta"); agentBeta != "" && b != agentBeta {
			h.Set("anthropic-beta", agentBeta+","+b)
		}
		if h.Get("anthropic-version") == "" {
			h.Set("anthropic-version", cfg.AnthropicVersion)
		}
		if cfg.APIKey != "" {
			h.Set("x-api-key", cfg.APIKey)
		}
	}
}

func (p *Plugin) do(ctx context.Context, hc *http.Client, cfg Config, method, path string, body []byte) (*http.Response, error) {
	return api(cfg).Do(ctx, hc, method, secrets.JoinURL(cfg.BaseURL, path), body, setHeaders(cfg))
}

// Forward sends an Anthropic-dialect request (messages, count_tokens)
// unchanged but for the credential; the agent's anthropic-version and
// anthropic-beta headers and ?beta=true pass with it.
func (p *Plugin) Forward(ctx context.Context, req *llm.ForwardRequest, send func(*llm.ForwardChunk) error) error {
	if req.Dialect != llm.DialectAnthropic {
		return status.Errorf(status.NotSupported, "llm-anthropic speaks the anthropic dialect, not %q", req.Dialect)
	}
	cfg, timeout, hc := p.snapshot()
	if !req.Stream {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	return api(cfg).Forward(ctx, hc, cfg.BaseURL+"/v1"+req.Path, req, setHeaders(cfg), send)
}

var _ llm.Forwarder = (*Plugin)(nil)

var _ llm.Provider = (*Plugin)(nil)

// String never prints the key.
func (p *Plugin) String() string {
	cfg, _, _ := p.snapshot()
	return fmt.Sprintf("llm-anthropic(%s)", secrets.ShowURL(cfg.BaseURL))
}

// messageOf is an error's text without its class prefix, so re-wrapping
// it does not repeat "unavailable: ".
func messageOf(err error) string {
	var se *status.Error
	if errors.As(err, &se) {
		return se.Message
	}
	return err.Error()
}
