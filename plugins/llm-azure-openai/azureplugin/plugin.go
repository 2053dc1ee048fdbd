package azureplugin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/nemoclave/nemoclave/internal/llmhttp"
	"github.com/nemoclave/nemoclave/internal/secrets"
	"github.com/nemoclave/nemoclave/internal/wire/openai"
	"github.com/nemoclave/nemoclave/internal/wire/sse"
	"github.com/nemoclave/nemoclave/sdk/llm"
	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/schema"
	"github.com/nemoclave/nemoclave/sdk/status"
)

// Version of the plugin.
const Version = "0.1.0"

// Plugin is the llm-azure-openai plugin.
type Plugin struct {
	plugin.Base
	// entraTransport, when set (tests), carries the Entra token requests.
	entraTransport policy.Transporter

	mu      sync.RWMutex
	cfg     Config
	timeout time.Duration
	hc      *http.Client
	cred    azcore.TokenCredential
}

// New returns an unconfigured plugin (Configure before use).
func New() *Plugin { return &Plugin{timeout: 120 * time.Second} }

// Info describes the plugin.
func (*Plugin) Info() plugin.Info {
	return plugin.Info{
		Name:         "llm-azure-openai",
		Version:      Version,
		Description:  "Azure OpenAI deployments with Microsoft Entra ID (workload or managed identity, client secret) or an api-key.",
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

// Configure builds the credential; no token is fetched until the first
// call, so a blueprint validates without reaching Entra.
func (p *Plugin) Configure(_ context.Context, cfg plugin.Config, _ plugin.Host) error {
	c, timeout, diags := parseConfig(cfg.JSON)
	if err := plugin.ConfigError("llm-azure-openai", diags); err != nil {
		return err
	}
	cred, err := newCredential(c, p.entraTransport)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cfg, p.timeout, p.cred, p.hc = c, timeout, cred, llmhttp.NewClient(0, timeout)
	return nil
}

func (p *Plugin) snapshot() (Config, time.Duration, *http.Client, azcore.TokenCredential, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.hc == nil {
		return p.cfg, p.timeout, nil, nil, status.Errorf(status.Unavailable, "llm-azure-openai is not configured")
	}
	return p.cfg, p.timeout, p.hc, p.cred, nil
}

// ListModels reports the configured deployments' model names: listing
// deployments is a management-plane call the data-plane identity may not
// be allowed to make.
func (p *Plugin) ListModels(context.Context) ([]llm.Model, error) {
	p.mu.RLock()
	c := p.cfg
	p.mu.RUnlock()
	var out []llm.Model
	for name := range c.Deployments {
		out = append(out, llm.Model{ID: name, OwnedBy: "azure-openai", Capabilities: []string{"streaming", "tools", "vision"}})
	}
	slices.SortFunc(out, func(a, b llm.Model) int {
		if a.ID < b.ID {
			return -1
		}
		return 1
	})
	return out, nil
}

// Chat runs one completion.
func (p *Plugin) Chat(ctx context.Context, req *llm.ChatRequest) (*llm.ChatResponse, error) {
	c, timeout, hc, cred, err := p.snapshot()
	if err != nil {
		return nil, err
	}
	body, err := openai.EncodeChatRequest(req, false)
	if err != nil {
		return nil, status.Errorf(status.InvalidArgument, "%v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := p.do(ctx, hc, c, cred, req.Model, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var w openai.ChatResponse
	if err := json.NewDecoder(resp.Body).Decode(&w); err != nil {
		return nil, status.Errorf(status.Unavailable, "Azure OpenAI sent an unreadable response: %v", err)
	}
	out := openai.DecodeResponse(&w)
	out.Model = req.Model // Azure reports the base model, agents asked for their name
	return out, nil
}

// ChatStream runs one completion with stream=true and usage reporting.
func (p *Plugin) ChatStream(ctx context.Context, req *llm.ChatRequest, send func(*llm.ChatChunk) error) error {
	c, timeout, hc, cred, err := p.snapshot()
	if err != nil {
		return err
	}
	body, err := openai.EncodeChatRequest(req, true)
	if err != nil {
		return status.Errorf(status.InvalidArgument, "%v", err)
	}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := p.doStream(ctx, tctx, hc, c, cred, req.Model, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	r := sse.NewReader(resp.Body)
	key := secretOf(c)
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return status.Errorf(status.Unavailable, "Azure OpenAI's stream broke: %s", llmhttp.Redact(err.Error(), key))
		}
		if bytes.Equal(ev.Data, []byte("[DONE]")) {
			return nil
		}
		var ch openai.ChatChunk
		if err := json.Unmarshal(ev.Data, &ch); err != nil {
			return status.Errorf(status.Unavailable, "Azure OpenAI sent a malformed stream chunk: %v", err)
		}
		if len(ch.Choices) == 0 && ch.Usage == nil {
			// Azure's first chunk carries only prompt_filter_results.
			var e openai.ErrorBody
			if json.Unmarshal(ev.Data, &e) == nil && e.Error.Message != "" {
				return status.Errorf(status.Unavailable, "Azure OpenAI reported an error mid-stream: %s", llmhttp.Redact(e.Error.Message, key))
			}
			continue
		}
		chunk := openai.DecodeChunk(&ch)
		chunk.Model = req.Model
		if err := send(chunk); err != nil {
			return err
		}
	}
}

func secretOf(c Config) string {
	if c.APIKey != "" {
		return c.APIKey
	}
	return c.ClientSecret
}

// api is how this plugin reads Azure's errors (OpenAI's error body).
func api(c Config) llmhttp.Provider {
	return llmhttp.Provider{Key: secretOf(c), Code: openai.StatusCode, ErrorMessage: func(raw []byte) string {
		var e struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Error.Message != "" {
			if e.Error.Code != "" {
				return e.Error.Code + ": " + e.Error.Message
			}
			return e.Error.Message
		}
		return ""
	}}
}

// chatURL is the deployment's chat completions URL for model.
func chatURL(c Config, model string) (string, error) {
	dep, ok := c.Deployments[model]
	if !ok {
		names := make([]string, 0, len(c.Deployments))
		for k := range c.Deployments {
			names = append(names, k)
		}
		slices.Sort(names)
		return "", status.Errorf(status.NotFound, "model %q has no Azure OpenAI deployment; add it to deployments (configured: %v)", model, names)
	}
	return c.Endpoint + "/openai/deployments/" + url.PathEscape(dep) + "/chat/completions?api-version=" + url.QueryEscape(c.APIVersion), nil
}

func (p *Plugin) do(ctx context.Context, hc *http.Client, c Config, cred azcore.TokenCredential, model string, body []byte) (*http.Response, error) {
	return p.doStream(ctx, ctx, hc, c, cred, model, body)
}

// doStream sends one request on ctx; the token fetch is bounded by
// tokenCtx (the timeout), since a stream's own context has no deadline.
func (p *Plugin) doStream(ctx, tokenCtx context.Context, hc *http.Client, c Config, cred azcore.TokenCredential, model string, body []byte) (*http.Response, error) {
	u, err := chatURL(c, model)
	if err != nil {
		return nil, err
	}
	var tk string
	if cred != nil {
		if tk, err = token(tokenCtx, cred, c); err != nil {
			return nil, err
		}
	}
	return api(c).Do(ctx, hc, http.MethodPost, u, body, func(h http.Header) {
		h.Set("Accept", "application/json, text/event-stream")
		for k, v := range c.Headers {
			h.Set(k, v)
		}
		if cred == nil {
			h.Set("api-key", c.APIKey)
		} else {
			h.Set("Authorization", "Bearer "+tk)
		}
	})
}

// Forward sends an OpenAI chat completions request to the deployment of
// its model unchanged but for the credential: Azure OpenAI speaks that
// format at /openai/deployments/<d>/chat/completions?api-version=…, so the
// agent's request (its fields, tools, response_format) reaches the model
// as written, and the answer comes back as Azure sent it. The gateway has
// set the body's model to the route's model, the key of deployments.
// Other dialects and paths (the Responses API) answer NotSupported, and
// the gateway translates them through Chat instead.
func (p *Plugin) Forward(ctx context.Context, req *llm.ForwardRequest, send func(*llm.ForwardChunk) error) error {
	if req.Dialect != llm.DialectOpenAI || req.Path != "/chat/completions" {
		return status.Errorf(status.NotSupported, "llm-azure-openai forwards OpenAI chat completions only, not %s %s", req.Dialect, req.Path)
	}
	c, timeout, hc, cred, err := p.snapshot()
	if err != nil {
		return err
	}
	var body struct {
		Model string `json:"model"`
	}
	if err := json.Unmarshal(req.Body, &body); err != nil {
		return status.Errorf(status.InvalidArgument, "request body must be a JSON object: %v", err)
	}
	u, err := chatURL(c, body.Model)
	if err != nil {
		return err
	}
	// The token fetch is bounded by the timeout, and so is a whole answer
	// that is not a stream.
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if !req.Stream {
		ctx = tctx
	}
	bearer := ""
	if cred != nil {
		if bearer, err = token(tctx, cred, c); err != nil {
			return err
		}
	}
	fr := *req
	fr.Query = "" // the api-version is the configuration's
	return api(c).Forward(ctx, hc, u, &fr, func(h http.Header) {
		for k, v := range c.Headers {
			h.Set(k, v)
		}
		if cred == nil {
			h.Set("api-key", c.APIKey)
		} else {
			h.Set("Authorization", "Bearer "+bearer)
		}
	}, send)
}

var _ llm.Forwarder = (*Plugin)(nil)

var _ llm.Provider = (*Plugin)(nil)

// String never prints a credential.
func (p *Plugin) String() string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return fmt.Sprintf("llm-azure-openai(%s, %s)", secrets.ShowURL(p.cfg.Endpoint), p.cfg.Auth)
}
