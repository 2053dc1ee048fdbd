package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/nemoclave/nemoclave/sdk/memory"
	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/schema"
	"github.com/nemoclave/nemoclave/sdk/status"
)

const version = "0.1.0"

const embeddingsAttr = "embeddings"

type config struct {
	// DSN is a PostgreSQL connection string (URL or key=value).
	DSN           string  `json:"dsn"`
	MaxConns      int     `json:"max_connections"`
	VectorWeight  float64 `json:"vector_weight"`
	KeywordWeight float64 `json:"keyword_weight"`
}

func defaultConfig() config {
	return config{MaxConns: 8, VectorWeight: 0.7, KeywordWeight: 0.3}
}

func parseConfig(raw json.RawMessage) (config, error) {
	c := defaultConfig()
	if len(raw) == 0 {
		return c, nil
	}
	var in struct {
		DSN           *string  `json:"dsn"`
		MaxConns      *float64 `json:"max_connections"`
		VectorWeight  *float64 `json:"vector_weight"`
		KeywordWeight *float64 `json:"keyword_weight"`
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		return c, fmt.Errorf("memory-postgres config: %w", err)
	}
	if in.DSN != nil {
		c.DSN = *in.DSN
	}
	if in.MaxConns != nil {
		c.MaxConns = int(*in.MaxConns)
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
	if c.DSN == "" {
		ds = append(ds, plugin.Errorf([]string{"dsn"}, "dsn is required: a PostgreSQL connection string such as postgres://user@db:5432/nemoclave (use credential(\"NAME\") for one with a password)"))
	} else if _, err := pgx.ParseConfig(c.DSN); err != nil {
		ds = append(ds, plugin.Errorf([]string{"dsn"}, "dsn does not parse as a PostgreSQL connection string: %v", err))
	}
	if c.MaxConns < 1 || c.MaxConns > 1000 {
		ds = append(ds, plugin.Errorf([]string{"max_connections"}, "max_connections must be between 1 and 1000, got %d", c.MaxConns))
	}
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

type memoryPlugin struct {
	plugin.Base

	store plugin.Store[*store]
}

var _ memory.Store = (*memoryPlugin)(nil)

func newPlugin() *memoryPlugin {
	return &memoryPlugin{store: plugin.Store[*store]{Name: "memory-postgres"}}
}

func (*memoryPlugin) Info() plugin.Info {
	return plugin.Info{
		Name:        "memory-postgres",
		Version:     version,
		Description: "Agent memory on PostgreSQL (+ pgvector for vector recall): hybrid full-text and embedding recall, scoped by agent, user and session.",
		Kinds:       []plugin.Kind{plugin.KindMemory},
	}
}

func (*memoryPlugin) ConfigSchema() *schema.Schema {
	return &schema.Schema{Block: schema.Block{
		Description: "Memory store on PostgreSQL. Vector recall needs the pgvector extension.",
		Attributes: []schema.Attribute{
			{Name: "dsn", Type: "string", Required: true, Sensitive: true,
				Description: "PostgreSQL connection string (postgres://user@host:5432/db). Give one with a password as credential(\"NAME\")."},
			{Name: "max_connections", Type: "number", Default: json.RawMessage(`8`),
				Description: "Connection pool size."},
			{Name: embeddingsAttr, PluginKind: string(plugin.KindEmbeddings),
				Description: "Embeddings plugin for vector recall (needs pgvector in the database). Without one, recall is full-text only."},
			{Name: "vector_weight", Type: "number", Default: json.RawMessage(`0.7`),
				Description: "Weight of cosine similarity in a hybrid recall score, 0..1."},
			{Name: "keyword_weight", Type: "number", Default: json.RawMessage(`0.3`),
				Description: "Weight of the normalised full-text rank in a hybrid recall score, 0..1."},
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

func (p *memoryPlugin) Configure(ctx context.Context, cfg plugin.Config, host plugin.Host) error {
	c, err := parseConfig(cfg.JSON) // the SDK ran ValidateConfig already
	if err != nil {
		return status.Errorf(status.InvalidArgument, "%v", err)
	}
	emb, err := cfg.WiredEmbeddings(host, embeddingsAttr)
	if err != nil {
		return err
	}
	return p.store.Swap(false, func() (*store, error) { return openStore(ctx, c, emb) })
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
