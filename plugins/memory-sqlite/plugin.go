package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nemoclave/nemoclave/sdk/memory"
	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/schema"
	"github.com/nemoclave/nemoclave/sdk/status"
)

const version = "0.1.0"

// embeddingsAttr is the config attribute the blueprint wires an embeddings
// plugin to.
const embeddingsAttr = "embeddings"

type config struct {
	// Path of the database; relative paths are under the state dir.
	Path string `json:"path"`
	// VectorWeight and KeywordWeight weigh cosine similarity and the
	// normalised BM25 score in a hybrid recall.
	VectorWeight  float64 `json:"vector_weight"`
	KeywordWeight float64 `json:"keyword_weight"`
}

func defaultConfig() config {
	return config{Path: "memory.db", VectorWeight: 0.7, KeywordWeight: 0.3}
}

func parseConfig(raw json.RawMessage) (config, error) {
	c := defaultConfig()
	if len(raw) == 0 {
		return c, nil
	}
	// Absent or null attributes keep their defaults; the embeddings
	// attribute arrives as an object describing the wired plugin and is
	// reached through the host instead.
	var in struct {
		Path          *string  `json:"path"`
		VectorWeight  *float64 `json:"vector_weight"`
		KeywordWeight *float64 `json:"keyword_weight"`
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		return c, fmt.Errorf("memory-sqlite config: %w", err)
	}
	if in.Path != nil && *in.Path != "" {
		c.Path = *in.Path
	}
	if in.VectorWeight != nil {
		c.VectorWeight = *in.VectorWeight
	}
	if in.KeywordWeight != nil {
		c.KeywordWeight = *in.KeywordWeight
	}
	return c, nil
}

func (c config) validate() []plugin.Diagnostic {
	var ds []plugin.Diagnostic
	if c.VectorWeight < 0 || c.VectorWeight > 1 {
		ds = append(ds, plugin.Errorf([]string{"vector_weight"}, "vector_weight must be between 0 and 1, got %g", c.VectorWeight))
	}
	if c.KeywordWeight < 0 || c.KeywordWeight > 1 {
		ds = append(ds, plugin.Errorf([]string{"keyword_weight"}, "keyword_weight must be between 0 and 1, got %g", c.KeywordWeight))
	}
	if c.VectorWeight+c.KeywordWeight == 0 {
		ds = append(ds, plugin.Errorf([]string{"keyword_weight"}, "vector_weight and keyword_weight are both 0; give at least one a positive weight"))
	}
	return ds
}

// memoryPlugin serves memory.Store over the store opened by Configure.
type memoryPlugin struct {
	plugin.Base

	store plugin.Store[*store]
}

var _ memory.Store = (*memoryPlugin)(nil)

func newPlugin() *memoryPlugin {
	return &memoryPlugin{store: plugin.Store[*store]{Name: "memory-sqlite"}}
}

func (*memoryPlugin) Info() plugin.Info {
	return plugin.Info{
		Name:        "memory-sqlite",
		Version:     version,
		Description: "Persistent agent memory in SQLite: hybrid recall (FTS5 BM25 + embeddings), scoped by agent, user and session.",
		Kinds:       []plugin.Kind{plugin.KindMemory},
	}
}

func (*memoryPlugin) ConfigSchema() *schema.Schema {
	return &schema.Schema{Block: schema.Block{
		Description: "Memory store in one SQLite file (WAL, synchronous=FULL).",
		Attributes: []schema.Attribute{
			{Name: "path", Type: "string", Default: json.RawMessage(`"memory.db"`),
				Description: "Database file; a relative path is under the plugin's state dir (the only place the sandboxed plugin may write)."},
			{Name: embeddingsAttr, PluginKind: string(plugin.KindEmbeddings),
				Description: "Embeddings plugin for vector recall. Without one, recall is full-text (BM25) only."},
			{Name: "vector_weight", Type: "number", Default: json.RawMessage(`0.7`),
				Description: "Weight of cosine similarity in a hybrid recall score, 0..1."},
			{Name: "keyword_weight", Type: "number", Default: json.RawMessage(`0.3`),
				Description: "Weight of the normalised BM25 score in a hybrid recall score, 0..1."},
		},
	}}
}

func (*memoryPlugin) ValidateConfig(_ context.Context, raw json.RawMessage) []plugin.Diagnostic {
	c, err := parseConfig(raw)
	if err != nil {
		return []plugin.Diagnostic{plugin.Errorf(nil, "%v", err)}
	}
	return c.validate()
}

// Configure opens (or reopens) the database and, when an embedder is wired,
// embeds memories stored without a vector or under another model.
func (p *memoryPlugin) Configure(ctx context.Context, cfg plugin.Config, host plugin.Host) error {
	c, err := parseConfig(cfg.JSON) // the SDK ran ValidateConfig already
	if err != nil {
		return status.Errorf(status.InvalidArgument, "%v", err)
	}
	path, err := cfg.StatePath(c.Path)
	if err != nil {
		return err
	}
	emb, err := cfg.WiredEmbeddings(host, embeddingsAttr)
	if err != nil {
		return err
	}
	// Swap waits for calls in flight: the new store's vectors load from a
	// database nobody is writing.
	return p.store.Swap(false, func() (*store, error) { return openStore(ctx, path, emb, c) })
}

func (p *memoryPlugin) Remember(ctx context.Context, scope memory.Scope, text string, metadata map[string]any) (memory.Memory, error) {
	s, release, err := p.store.Acquire()
	if err != nil {
		return memory.Memory{}, err
	}
	defer release()
	return s.Remember(ctx, scope, text, metadata)
}

func (p *memoryPlugin) Recall(ctx context.Context, scope memory.Scope, query string, limit int, minScore float64) ([]memory.Scored, error) {
	s, release, err := p.store.Acquire()
	if err != nil {
		return nil, err
	}
	defer release()
	return s.Recall(ctx, scope, query, limit, minScore)
}

func (p *memoryPlugin) List(ctx context.Context, scope memory.Scope, limit int, pageToken string) (memory.Page, error) {
	s, release, err := p.store.Acquire()
	if err != nil {
		return memory.Page{}, err
	}
	defer release()
	return s.List(ctx, scope, limit, pageToken)
}

func (p *memoryPlugin) Forget(ctx context.Context, scope memory.Scope, ids []string, all bool) (int, error) {
	s, release, err := p.store.Acquire()
	if err != nil {
		return 0, err
	}
	defer release()
	return s.Forget(ctx, scope, ids, all)
}
