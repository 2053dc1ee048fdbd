package anthropicplugin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/nemoclave/nemoclave/internal/secrets"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

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
	if err := errorsOf(diags); err != nil {
		return err
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          512,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: timeout,
		ForceAttemptHTTP2:     true,
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cfg, p.timeout, p.hc = c, timeout, &http.Client{Transport: tr}
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
		return nil, status.Errorf(status.Unavailable, "provider at %s sent an unreadable model list: %v", secrets.ShowURL(cfg.BaseURL), err)
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
		return nil, status.Errorf(status.Unavailable, "provider at %s sent an unreadable response: %v", secrets.ShowURL(cfg.BaseURL), err)
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
			return status.Errorf(status.Unavailable, "stream from %s broke: %s", secrets.ShowURL(cfg.BaseURL), scrub(err.Error(), cfg))
		}
		chunk, done, err := dec.Decode(ev.Data)
		if err != nil {
			return status.Errorf(status.CodeOf(err), "%s", scrub(err.Error(), cfg))
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

func (p *Plugin) do(ctx context.Context, hc *http.Client, cfg Config, method, path string, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	hreq, err := http.NewRequestWithContext(ctx, method, secrets.JoinURL(cfg.BaseURL, path), rd)
	if err != nil {
		return nil, status.Errorf(status.InvalidArgument, "build request: %v", err)
	}
	for k, v := range cfg.Headers {
		hreq.Header.Set(k, v)
	}
	if body != nil {
		hreq.Header.Set("Content-Type", "application/json")
	}
	hreq.Header.Set("anthropic-version", cfg.AnthropicVersion)
	if cfg.APIKey != "" {
		hreq.Header.Set("x-api-key", cfg.APIKey)
	}
	resp, err := hc.Do(hreq)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			if errors.Is(ctxErr, context.DeadlineExceeded) {
				return nil, status.Errorf(status.DeadlineExceeded, "provider at %s did not answer in time; raise timeout in the plugin config if it is slow", secrets.ShowURL(cfg.BaseURL))
			}
			return nil, ctxErr
		}
		return nil, status.Errorf(status.Unavailable, "provider at %s unreachable: %s", secrets.ShowURL(cfg.BaseURL), scrub(err.Error(), cfg))
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	msg := strings.TrimSpace(string(raw))
	var e anthropic.ErrorBody
	if json.Unmarshal(raw, &e) == nil && e.Error.Message != "" {
		msg = e.Error.Type + ": " + e.Error.Message
	}
	code := anthropic.StatusCode(resp.StatusCode)
	if resp.StatusCode == 529 {
		code = status.Unavailable
	}
	hint := ""
	if code == status.Unauthenticated {
		hint = " (check the credential the api_key attribute names: nemoclave provider add NAME)"
	}
	return nil, status.Errorf(code, "provider at %s answered %d: %s%s", secrets.ShowURL(cfg.BaseURL), resp.StatusCode, scrub(msg, cfg), hint)
}

// scrub removes the key (whole or any 8-byte piece of it) and base_url's
// userinfo and query from text a provider or the HTTP client produced.
func scrub(text string, cfg Config) string {
	return secrets.New(6, []string{cfg.APIKey}, secrets.URLSecrets(cfg.BaseURL)...).Scrub(text)
}

var _ llm.Provider = (*Plugin)(nil)

// String never prints the key.
func (p *Plugin) String() string {
	cfg, _, _ := p.snapshot()
	return fmt.Sprintf("llm-anthropic(%s)", secrets.ShowURL(cfg.BaseURL))
}
