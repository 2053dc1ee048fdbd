package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/retrieval"
	"github.com/nemoclave/nemoclave/sdk/schema"
	"github.com/nemoclave/nemoclave/sdk/status"
)

const version = "0.1.0"

const embeddingsAttr = "embeddings"

type config struct {
	Path string `json:"path"`
	// HNSWThreshold is the live vector count from which a collection gets
	// an approximate index; 0 keeps every collection exact.
	HNSWThreshold  int `json:"hnsw_threshold"`
	HNSWM          int `json:"hnsw_m"`
	EfConstruction int `json:"hnsw_ef_construction"`
	EfSearch       int `json:"hnsw_ef_search"`
}

func defaultConfig() config {
	return config{Path: "retrieval.db", HNSWThreshold: 250000, HNSWM: 16, EfConstruction: 100, EfSearch: 160}
}

func (c config) hnswParams() hnswParams {
	return hnswParams{M: c.HNSWM, EfConstruction: c.EfConstruction, EfSearch: c.EfSearch}
}

func parseConfig(raw json.RawMessage) (config, error) {
	c := defaultConfig()
	if len(raw) == 0 {
		return c, nil
	}
	var in struct {
		Path           *string  `json:"path"`
		HNSWThreshold  *float64 `json:"hnsw_threshold"`
		HNSWM          *float64 `json:"hnsw_m"`
		EfConstruction *float64 `json:"hnsw_ef_construction"`
		EfSearch       *float64 `json:"hnsw_ef_search"`
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		return c, fmt.Errorf("retrieval-sqlite config: %w", err)
	}
	if in.Path != nil && *in.Path != "" {
		c.Path = *in.Path
	}
	set := func(dst *int, v *float64) {
		if v != nil {
			*dst = int(*v)
		}
	}
	set(&c.HNSWThreshold, in.HNSWThreshold)
	set(&c.HNSWM, in.HNSWM)
	set(&c.EfConstruction, in.EfConstruction)
	set(&c.EfSearch, in.EfSearch)
	return c, nil
}

func (c config) validate() []plugin.Diagnostic {
	var ds []plugin.Diagnostic
	if c.HNSWThreshold < 0 {
		ds = append(ds, plugin.Errorf([]string{"hnsw_threshold"}, "hnsw_threshold must be 0 (never) or a vector count, got %d", c.HNSWThreshold))
	}
	if c.HNSWM < 2 || c.HNSWM > 128 {
		ds = append(ds, plugin.Errorf([]string{"hnsw_m"}, "hnsw_m must be between 2 and 128 (16 is usual), got %d", c.HNSWM))
	}
	if c.EfConstruction < c.HNSWM || c.EfConstruction > 2000 {
		ds = append(ds, plugin.Errorf([]string{"hnsw_ef_construction"}, "hnsw_ef_construction must be between hnsw_m and 2000, got %d", c.EfConstruction))
	}
	if c.EfSearch < 1 || c.EfSearch > 5000 {
		ds = append(ds, plugin.Errorf([]string{"hnsw_ef_search"}, "hnsw_ef_search must be between 1 and 5000, got %d", c.EfSearch))
	}
	return ds
}

type retrievalPlugin struct {
	plugin.Base

	store plugin.Store[*store]
}

var _ retrieval.Store = (*retrievalPlugin)(nil)

func newPlugin() *retrievalPlugin {
	return &retrievalPlugin{store: plugin.Store[*store]{Name: "retrieval-sqlite"}}
}

func (*retrievalPlugin) Info() plugin.Info {
	return plugin.Info{
		Name:        "retrieval-sqlite",
		Version:     version,
		Description: "Embedded retrieval store: SQLite persistence, in-memory exact search, HNSW for large collections, BM25 without an embedder.",
		Kinds:       []plugin.Kind{plugin.KindRetrieval},
	}
}

func (*retrievalPlugin) ConfigSchema() *schema.Schema {
	d := defaultConfig()
	num := func(n int) json.RawMessage { return json.RawMessage(fmt.Sprint(n)) }
	return &schema.Schema{Block: schema.Block{
		Description: "Retrieval store in one SQLite file; vectors are searched in memory.",
		Attributes: []schema.Attribute{
			{Name: "path", Type: "string", Default: json.RawMessage(`"retrieval.db"`),
				Description: "Database file; a relative path is under the plugin's state dir."},
			{Name: embeddingsAttr, PluginKind: string(plugin.KindEmbeddings),
				Description: "Embeddings plugin for text queries and documents upserted without vectors. Without one, text queries use BM25."},
			{Name: "hnsw_threshold", Type: "number", Default: num(d.HNSWThreshold),
				Description: "Live vectors from which a collection also gets an HNSW index for unfiltered queries; 0 keeps every query exact."},
			{Name: "hnsw_m", Type: "number", Default: num(d.HNSWM), Description: "HNSW links per node (2M on the base layer)."},
			{Name: "hnsw_ef_construction", Type: "number", Default: num(d.EfConstruction), Description: "HNSW beam width while building."},
			{Name: "hnsw_ef_search", Type: "number", Default: num(d.EfSearch), Description: "HNSW beam width while searching (at least top_k); higher is slower and more exact."},
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
	path, err := cfg.StatePath(c.Path)
	if err != nil {
		return err
	}
	emb, err := cfg.WiredEmbeddings(host, embeddingsAttr)
	if err != nil {
		return err
	}
	// Two stores on one file would each hold their own copy of the
	// vectors and drift apart: the old one is closed before the new loads.
	return p.store.Swap(true, func() (*store, error) { return openStore(ctx, path, emb, c) })
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
