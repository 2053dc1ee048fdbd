package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpproxy"

	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/schema"
	"github.com/nemoclave/nemoclave/sdk/status"
	"github.com/nemoclave/nemoclave/sdk/tools"
)

const version = "0.1.0"

type config struct {
	// MaxBytes bounds the response body read from the network.
	MaxBytes int64 `json:"max_bytes"`
	// MaxLength is the default number of characters of text returned per
	// call; the model pages through longer texts with start_index.
	MaxLength int `json:"max_length"`
	// Timeout bounds one fetch, redirects included, in seconds.
	Timeout   float64 `json:"timeout"`
	UserAgent string  `json:"user_agent"`
}

func defaultConfig() config {
	return config{MaxBytes: 5 << 20, MaxLength: 20000, Timeout: 30, UserAgent: "nemoclave-tools-http/" + version}
}

func parseConfig(raw json.RawMessage) (config, error) {
	c := defaultConfig()
	if len(raw) == 0 {
		return c, nil
	}
	var in struct {
		MaxBytes  *float64 `json:"max_bytes"`
		MaxLength *float64 `json:"max_length"`
		Timeout   *float64 `json:"timeout"`
		UserAgent *string  `json:"user_agent"`
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	if in.MaxBytes != nil {
		c.MaxBytes = int64(*in.MaxBytes)
	}
	if in.MaxLength != nil {
		c.MaxLength = int(*in.MaxLength)
	}
	if in.Timeout != nil {
		c.Timeout = *in.Timeout
	}
	if in.UserAgent != nil {
		c.UserAgent = *in.UserAgent
	}
	return c, nil
}

func (c config) validate() []plugin.Diagnostic {
	var ds []plugin.Diagnostic
	if c.MaxBytes < 1024 || c.MaxBytes > 1<<30 {
		ds = append(ds, plugin.Errorf([]string{"max_bytes"}, "max_bytes must be between 1024 and 1073741824, got %d", c.MaxBytes))
	}
	if c.MaxLength < 100 {
		ds = append(ds, plugin.Errorf([]string{"max_length"}, "max_length must be at least 100 characters, got %d", c.MaxLength))
	}
	if c.Timeout <= 0 || c.Timeout > 600 {
		ds = append(ds, plugin.Errorf([]string{"timeout"}, "timeout must be between 0 and 600 seconds, got %v", c.Timeout))
	}
	return ds
}

type httpPlugin struct {
	plugin.Base

	mu     sync.RWMutex
	cfg    config
	client *http.Client
}

func (*httpPlugin) Info() plugin.Info {
	return plugin.Info{
		Name:        "tools-http",
		Version:     version,
		Description: "Fetch a URL through the egress proxy and return readable text (HTML converted to Markdown-like text).",
		Kinds:       []plugin.Kind{plugin.KindTools},
	}
}

func (*httpPlugin) ConfigSchema() *schema.Schema {
	return &schema.Schema{Block: schema.Block{
		Description: "Fetches go through HTTP_PROXY/HTTPS_PROXY from the plugin's environment (the egress proxy under the plugin's own policy).",
		Attributes: []schema.Attribute{
			{Name: "max_bytes", Type: "number", Default: json.RawMessage("5242880"), Description: "Largest response body read, in bytes; longer bodies are cut and marked truncated."},
			{Name: "max_length", Type: "number", Default: json.RawMessage("20000"), Description: "Characters of text returned per call unless the call asks otherwise."},
			{Name: "timeout", Type: "number", Default: json.RawMessage("30"), Description: "Seconds one fetch may take, redirects included."},
			{Name: "user_agent", Type: "string", Default: json.RawMessage(`"nemoclave-tools-http/` + version + `"`), Description: "User-Agent header sent with every request."},
		},
	}}
}

func (*httpPlugin) ValidateConfig(_ context.Context, raw json.RawMessage) []plugin.Diagnostic {
	c, err := parseConfig(raw)
	if err != nil {
		return []plugin.Diagnostic{plugin.Errorf(nil, "%v", err)}
	}
	return c.validate()
}

func (p *httpPlugin) Configure(_ context.Context, cfg plugin.Config, _ plugin.Host) error {
	c, err := parseConfig(cfg.JSON) // the SDK ran ValidateConfig already
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.cfg, p.client = c, newClient(c)
	p.mu.Unlock()
	return nil
}

// newClient builds the HTTP client. The proxy settings are read from the
// environment now rather than through http.ProxyFromEnvironment, which
// caches them for the life of the process.
func newClient(c config) *http.Client {
	proxy := httpproxy.FromEnvironment().ProxyFunc()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = func(r *http.Request) (*url.URL, error) { return proxy(r.URL) }
	return &http.Client{
		Transport: tr,
		Timeout:   time.Duration(c.Timeout * float64(time.Second)),
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= maxRedirects {
				return fmt.Errorf("stopped after %d redirects", maxRedirects)
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return fmt.Errorf("redirect to a %s: URL refused; only http and https are fetched", req.URL.Scheme)
			}
			return nil
		},
	}
}

func (p *httpPlugin) state() (config, *http.Client) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.client == nil {
		return p.cfg, newClient(p.cfg)
	}
	return p.cfg, p.client
}

func (p *httpPlugin) ListTools(context.Context) ([]tools.Tool, error) {
	return []tools.Tool{fetchTool}, nil
}

func (p *httpPlugin) CallTool(ctx context.Context, req *tools.CallRequest) (*tools.CallResult, error) {
	if req.Name != fetchTool.Name {
		return nil, status.Errorf(status.NotFound, "tool %q: this plugin serves only fetch_url", req.Name)
	}
	c, client := p.state()
	args := req.Arguments
	if len(args) == 0 {
		args = json.RawMessage("{}")
	}
	res := fetch(ctx, client, c, args)
	if res.IsError && len(res.Content) > 0 {
		// A refused or failed fetch, for the operator too, in the calling
		// sandbox's plugin log only.
		// The first line only (an error status's answer carries the page).
		msg, _, _ := strings.Cut(res.Content[0].Text, "\n")
		if len(msg) > 300 {
			msg = msg[:300] + "…"
		}
		plugin.Logger(ctx).Info("fetch failed", "agent", req.Context.Agent, "error", msg)
	}
	return res, nil
}

func main() {
	plugin.Serve(&httpPlugin{cfg: defaultConfig()})
}
