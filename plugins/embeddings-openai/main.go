package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync"

	"golang.org/x/net/http/httpproxy"

	"github.com/nemoclave/nemoclave/sdk/embeddings"
	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/schema"
	"github.com/nemoclave/nemoclave/sdk/status"
)

const version = "0.1.0"

type openaiPlugin struct {
	plugin.Base

	mu   sync.RWMutex
	cfg  config
	http *http.Client
	// dims caches each model's native vector length, learnt from a
	// response, so Dimensions costs one request per model at most.
	dims map[string]int
}

var _ embeddings.Embedder = (*openaiPlugin)(nil)

func newPlugin() *openaiPlugin {
	c, _ := parseConfig(nil)
	return &openaiPlugin{cfg: c, dims: map[string]int{}}
}

func (*openaiPlugin) Info() plugin.Info {
	return plugin.Info{
		Name:        "embeddings-openai",
		Version:     version,
		Description: "Embeddings from an OpenAI-compatible API (OpenAI, NVIDIA, Ollama, vLLM), batched.",
		Kinds:       []plugin.Kind{plugin.KindEmbeddings},
	}
}

func (*openaiPlugin) ConfigSchema() *schema.Schema { return configSchema() }

func (*openaiPlugin) ValidateConfig(_ context.Context, raw json.RawMessage) []plugin.Diagnostic {
	_, ds := parseConfig(raw)
	return ds
}

func (p *openaiPlugin) Configure(_ context.Context, cfg plugin.Config, _ plugin.Host) error {
	c, ds := parseConfig(cfg.JSON)
	if err := plugin.ConfigError("embeddings-openai", ds); err != nil {
		return err
	}
	proxy := httpproxy.FromEnvironment().ProxyFunc()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = func(r *http.Request) (*url.URL, error) { return proxy(r.URL) }
	p.mu.Lock()
	p.cfg, p.http, p.dims = c, &http.Client{Transport: tr}, map[string]int{}
	p.mu.Unlock()
	return nil
}

func (p *openaiPlugin) snapshot() (config, *http.Client) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.http == nil {
		return p.cfg, http.DefaultClient
	}
	return p.cfg, p.http
}

func (p *openaiPlugin) Embed(ctx context.Context, req *embeddings.EmbedRequest) (*embeddings.EmbedResponse, error) {
	cfg, hc := p.snapshot()
	model := req.Model
	if model == "" {
		model = cfg.Model
	}
	dims := req.Dimensions
	if dims == 0 && model == cfg.Model {
		dims = cfg.Dimensions
	}
	out := &embeddings.EmbedResponse{Model: model, Vectors: make([][]float32, 0, len(req.Inputs))}
	for start := 0; start < len(req.Inputs); start += cfg.BatchSize {
		batch := req.Inputs[start:min(start+cfg.BatchSize, len(req.Inputs))]
		res, err := embedBatch(ctx, hc, cfg, model, dims, batch)
		if err != nil {
			if len(req.Inputs) > len(batch) {
				return nil, fmt.Errorf("inputs %d-%d of %d: %w", start, start+len(batch)-1, len(req.Inputs), err)
			}
			return nil, err
		}
		out.Vectors = append(out.Vectors, res.vectors...)
		out.InputTokens += res.tokens
		if res.model != "" {
			out.Model = res.model
		}
	}
	if len(out.Vectors) > 0 && dims == 0 {
		p.mu.Lock()
		p.dims[model] = len(out.Vectors[0])
		p.mu.Unlock()
	}
	return out, nil
}

// Dimensions reports the configured size for the default model, or the
// size the model answered with, asking it once with a short probe.
func (p *openaiPlugin) Dimensions(ctx context.Context, model string) (int, error) {
	cfg, _ := p.snapshot()
	if model == "" {
		model = cfg.Model
	}
	if model == cfg.Model && cfg.Dimensions > 0 {
		return cfg.Dimensions, nil
	}
	p.mu.RLock()
	d, ok := p.dims[model]
	p.mu.RUnlock()
	if ok {
		return d, nil
	}
	res, err := p.Embed(ctx, &embeddings.EmbedRequest{Model: model, Inputs: []string{"dimension probe"}})
	if err != nil {
		return 0, err
	}
	if len(res.Vectors) != 1 || len(res.Vectors[0]) == 0 {
		return 0, status.Errorf(status.Internal, "model %q returned no vector for a probe; it may not be an embedding model", model)
	}
	return len(res.Vectors[0]), nil
}

// String never prints the key.
func (p *openaiPlugin) String() string {
	cfg, _ := p.snapshot()
	return fmt.Sprintf("embeddings-openai(%s, %s)", cfg.BaseURL, cfg.Model)
}

func main() {
	plugin.Serve(newPlugin())
}
