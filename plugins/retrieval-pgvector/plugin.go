package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/retrieval"
	"github.com/nemoclave/nemoclave/sdk/schema"
	"github.com/nemoclave/nemoclave/sdk/status"
)

const version = "0.1.0"

const embeddingsAttr = "embeddings"

type config struct {
	DSN      string `json:"dsn"`
	MaxConns int    `json:"max_connections"`
	// EfSearch is pgvector's hnsw.ef_search for unfiltered queries.
	EfSearch int `json:"hnsw_ef_search"`
}

func defaultConfig() config { return config{MaxConns: 8, EfSearch: 100} }

func parseConfig(raw json.RawMessage) (config, error) {
	c := defaultConfig()
	if len(raw) == 0 {
		return c, nil
	}
	var in struct {
		DSN      *string  `json:"dsn"`
		MaxConns *float64 `json:"max_connections"`
		EfSearch *float64 `json:"hnsw_ef_search"`
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		return c, fmt.Errorf("retrieval-pgvector config: %w", err)
	}
	if in.DSN != nil {
		c.DSN = *in.DSN
	}
	if in.MaxConns != nil {
		c.MaxConns = int(*in.MaxConns)
	}
	if in.EfSearch != nil {
		c.EfSearch = int(*in.EfSearch)
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
	if c.EfSearch < 1 || c.EfSearch > 1000 {
		ds = append(ds, plugin.Errorf([]string{"hnsw_ef_search"}, "hnsw_ef_search must be between 1 and 1000 (pgvector's range), got %d", c.EfSearch))
	}
	return ds
}

type retrievalPlugin struct {
	plugin.Base

	store plugin.Store[*store]
}

var _ retrieval.Store = (*retrievalPlugin)(nil)

func newPlugin() *retrievalPlugin {
	return &retrievalPlugin{store: plugin.Store[*store]{Name: "retrieval-pgvector"}}
}

func (*retrievalPlugin) Info() plugin.Info {
	return plugin.Info{
		Name:        "retrieval-pgvector",
		Version:     version,
		Description: "Retrieval store on PostgreSQL with pgvector: HNSW vector search, exact filtered search, full-text search without an embedder.",
		Kinds:       []plugin.Kind{plugin.KindRetrieval},
	}
}

func (*retrievalPlugin) ConfigSchema() *schema.Schema {
	return &schema.Schema{Block: schema.Block{
		Description: "Retrieval store on PostgreSQL; the database needs the pgvector extension.",
		Attributes: []schema.Attribute{
			{Name: "dsn", Type: "string", Required: true, Sensitive: true,
				Description: "PostgreSQL connection string (postgres://user@host:5432/db). Give one with a password as credential(\"NAME\")."},
			{Name: "max_connections", Type: "number", Default: json.RawMessage(`8`), Description: "Connection pool size."},
			{Name: embeddingsAttr, PluginKind: string(plugin.KindEmbeddings),
				Description: "Embeddings plugin for text queries and documents upserted without vectors. Without one, text queries use full-text search."},
			{Name: "hnsw_ef_search", Type: "number", Default: json.RawMessage(`100`),
				Description: "pgvector hnsw.ef_search for unfiltered vector queries: higher is slower and closer to exact."},
		},
	}}
}

func (*retrievalPlugin) ValidateConfig(_ context.Context, raw json.RawMessage) []plugin.Diagnostic {
	c, err := parseConfig(raw)
	if err != nil {
		return []plugin.Diagnostic{plugin.Errorf(nil, "%v", err)}
	}
	return c.validate()
}

func (p *retrievalPlugin) Configure(ctx context.Context, cfg plugin.Config, host plugin.Host) error {
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

func (p *retrievalPlugin) ListCollections(ctx context.Context) ([]retrieval.Collection, error) {
	s, release, err := p.store.Acquire()
	if err != nil {
		return nil, err
	}
	defer release()
	return s.ListCollections(ctx)
}

func (p *retrievalPlugin) CreateCollection(ctx context.Context, name string, dims int) (retrieval.Collection, error) {
	s, release, err := p.store.Acquire()
	if err != nil {
		return retrieval.Collection{}, err
	}
	defer release()
	return s.CreateCollection(ctx, name, dims)
}

func (p *retrievalPlugin) DeleteCollection(ctx context.Context, name string) error {
	s, release, err := p.store.Acquire()
	if err != nil {
		return err
	}
	defer release()
	return s.DeleteCollection(ctx, name)
}

func (p *retrievalPlugin) Upsert(ctx context.Context, collection string, docs []retrieval.Document) (int, error) {
	s, release, err := p.store.Acquire()
	if err != nil {
		return 0, err
	}
	defer release()
	return s.Upsert(ctx, collection, docs)
}

func (p *retrievalPlugin) Query(ctx context.Context, req *retrieval.QueryRequest) ([]retrieval.Match, error) {
	s, release, err := p.store.Acquire()
	if err != nil {
		return nil, err
	}
	defer release()
	return s.Query(ctx, req)
}

func (p *retrievalPlugin) Delete(ctx context.Context, req *retrieval.DeleteRequest) (int, error) {
	s, release, err := p.store.Acquire()
	if err != nil {
		return 0, err
	}
	defer release()
	return s.Delete(ctx, req)
}
