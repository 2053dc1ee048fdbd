package main

import (
	"context"
	"encoding/json"

	"github.com/nemoclave/nemoclave/sdk/embeddings"
	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/schema"
	"github.com/nemoclave/nemoclave/sdk/status"
)

const version = "0.1.0"

// maxDimensions bounds a request's dimensions so a typo cannot allocate
// gigabytes.
const maxDimensions = 8192

type hashPlugin struct {
	plugin.Base
	cfg config
}

func (*hashPlugin) Info() plugin.Info {
	return plugin.Info{
		Name:        "embeddings-hash",
		Version:     version,
		Description: "Deterministic lexical embeddings by feature hashing of word and character n-grams (offline, no model).",
		Kinds:       []plugin.Kind{plugin.KindEmbeddings},
	}
}

func (*hashPlugin) ConfigSchema() *schema.Schema {
	return &schema.Schema{Block: schema.Block{
		Description: "Feature-hashing embeddings. Vectors are L2-normalised; cosine similarity equals the dot product.",
		Attributes: []schema.Attribute{
			{Name: "dimensions", Type: "number", Default: json.RawMessage("256"), Description: "Vector length (1-8192)."},
			{Name: "word_ngrams", Type: "number", Default: json.RawMessage("2"), Description: "Longest word n-gram hashed (1 = words only)."},
			{Name: "char_ngram_min", Type: "number", Default: json.RawMessage("3"), Description: "Shortest character n-gram hashed within a word (0 disables character n-grams)."},
			{Name: "char_ngram_max", Type: "number", Default: json.RawMessage("5"), Description: "Longest character n-gram hashed within a word."},
		},
	}}
}

func (*hashPlugin) ValidateConfig(_ context.Context, raw json.RawMessage) []plugin.Diagnostic {
	c, err := parseConfig(raw)
	if err != nil {
		return []plugin.Diagnostic{plugin.Errorf(nil, "%v", err)}
	}
	return c.validate()
}

func (p *hashPlugin) Configure(_ context.Context, cfg plugin.Config, _ plugin.Host) error {
	c, err := parseConfig(cfg.JSON)
	if err != nil {
		return err
	}
	p.cfg = c
	return nil
}

func (p *hashPlugin) Embed(ctx context.Context, req *embeddings.EmbedRequest) (*embeddings.EmbedResponse, error) {
	dims := p.cfg.Dimensions
	if req.Dimensions > 0 {
		if req.Dimensions > maxDimensions {
			return nil, status.Errorf(status.InvalidArgument, "dimensions %d exceeds the maximum %d", req.Dimensions, maxDimensions)
		}
		dims = req.Dimensions
	}
	out := &embeddings.EmbedResponse{Model: modelName, Vectors: make([][]float32, len(req.Inputs))}
	for i, text := range req.Inputs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		v, tokens := p.cfg.embed(text, dims)
		out.Vectors[i] = v
		out.InputTokens += int64(tokens)
	}
	return out, nil
}

func (p *hashPlugin) Dimensions(_ context.Context, model string) (int, error) {
	if model != "" && model != modelName {
		return 0, status.Errorf(status.NotFound, "model %q: this plugin serves only %q", model, modelName)
	}
	return p.cfg.Dimensions, nil
}

func main() {
	plugin.Serve(&hashPlugin{cfg: defaultConfig()})
}
