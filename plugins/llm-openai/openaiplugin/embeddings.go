package openaiplugin

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/nemoclave/nemoclave/sdk/embeddings"
	"github.com/nemoclave/nemoclave/sdk/status"
)

// Embed calls POST /embeddings (OpenAI, NIM embedding models, vLLM,
// Ollama). An empty batch returns at once, without a provider call.
func (p *Plugin) Embed(ctx context.Context, req *embeddings.EmbedRequest) (*embeddings.EmbedResponse, error) {
	cfg, timeout, hc := p.snapshot()
	model := req.Model
	if model == "" {
		model = cfg.EmbeddingModel
	}
	if model == "" {
		return nil, status.Errorf(status.InvalidArgument, "no embeddings model: name one in the request or set embedding_model in the llm-openai config")
	}
	out := &embeddings.EmbedResponse{Model: model, Vectors: [][]float32{}}
	if len(req.Inputs) == 0 {
		return out, nil
	}
	body, err := json.Marshal(map[string]any{"model": model, "input": req.Inputs, "encoding_format": "float", "dimensions": omitZero(req.Dimensions)})
	if err != nil {
		return nil, status.Errorf(status.InvalidArgument, "%v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := p.do(ctx, hc, cfg, http.MethodPost, "/embeddings", body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var w struct {
		Model string `json:"model"`
		Data  []struct {
			Index     int       `json:"index"`
			Embedding []float32 `json:"embedding"`
		} `json:"data"`
		Usage struct {
			PromptTokens int64 `json:"prompt_tokens"`
		} `json:"usage"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&w); err != nil {
		return nil, status.Errorf(status.Unavailable, "the provider sent an unreadable embeddings response: %v", err)
	}
	if len(w.Data) != len(req.Inputs) {
		return nil, status.Errorf(status.Unavailable, "the provider returned %d embeddings for %d inputs", len(w.Data), len(req.Inputs))
	}
	out.Vectors = make([][]float32, len(req.Inputs))
	for _, d := range w.Data {
		if d.Index < 0 || d.Index >= len(out.Vectors) || out.Vectors[d.Index] != nil {
			return nil, status.Errorf(status.Unavailable, "the provider returned embeddings with bad indexes")
		}
		out.Vectors[d.Index] = d.Embedding
	}
	out.InputTokens = w.Usage.PromptTokens
	return out, nil
}

// omitZero keeps "dimensions" out of the request when unset: servers
// that do not support it reject even a zero.
func omitZero(n int) any {
	if n == 0 {
		return nil
	}
	return n
}

// Dimensions embeds a one-word probe once per model and remembers the
// vector length (providers do not report it otherwise).
func (p *Plugin) Dimensions(ctx context.Context, model string) (int, error) {
	cfg, _, _ := p.snapshot()
	if model == "" {
		model = cfg.EmbeddingModel
	}
	p.mu.RLock()
	n, ok := p.dims[model]
	p.mu.RUnlock()
	if ok {
		return n, nil
	}
	resp, err := p.Embed(ctx, &embeddings.EmbedRequest{Model: model, Inputs: []string{"dimensions"}})
	if err != nil {
		return 0, err
	}
	n = len(resp.Vectors[0])
	p.mu.Lock()
	if p.dims == nil {
		p.dims = map[string]int{}
	}
	p.dims[model] = n
	p.mu.Unlock()
	return n, nil
}

var _ embeddings.Embedder = (*Plugin)(nil)
