package retrieval

import (
	"context"

	"github.com/nemoclave/nemoclave/sdk/status"
)

// Store is a collection-oriented document store with similarity search.
// Implementations must be safe for concurrent use.
//
// Errors: an unknown collection is status.NotFound; a vector of the wrong
// length, an unknown filter op or a query with neither text nor vector is
// status.InvalidArgument; a text query against a store that cannot embed
// text is status.NotSupported.
type Store interface {
	ListCollections(ctx context.Context) ([]Collection, error)
	// CreateCollection creates name. Creating an existing collection with
	// the same dimensions succeeds and returns it, so setup code can run
	// on every start; different dimensions are status.InvalidArgument.
	// dimensions 0 lets the store decide (its embedder's size, or the
	// first upserted vector's).
	CreateCollection(ctx context.Context, name string, dimensions int) (Collection, error)
	// DeleteCollection removes name and all its documents.
	DeleteCollection(ctx context.Context, name string) error
	// Upsert inserts or replaces documents by ID and reports how many it
	// wrote. A document without Vector is embedded from Text by stores
	// that can; others answer status.InvalidArgument.
	Upsert(ctx context.Context, collection string, docs []Document) (int, error)
	// Query returns up to TopK matches, best first, among documents that
	// satisfy every filter (MatchFilters).
	Query(ctx context.Context, req *QueryRequest) ([]Match, error)
	// Delete removes the documents with the given IDs and those matching
	// the filters (both may be given; neither is status.InvalidArgument
	// so a mistake cannot empty a collection) and reports how many went.
	Delete(ctx context.Context, req *DeleteRequest) (int, error)
}

// Collection describes one collection.
type Collection struct {
	Name       string
	Dimensions int
	Count      int64
}

// Document is one stored item.
type Document struct {
	ID     string
	Text   string
	Vector []float32
	// Metadata is JSON-compatible and is what filters look at; numbers
	// come back as float64 after crossing the wire.
	Metadata map[string]any
}

// QueryRequest searches a collection by Text or by Vector (Vector wins
// when both are set).
type QueryRequest struct {
	Collection string
	Text       string
	Vector     []float32
	// TopK <= 0 means the store's default (10 is recommended).
	TopK    int
	Filters []Filter
	// IncludeVectors returns each match's vector; off by default because
	// vectors dominate the response size.
	IncludeVectors bool
}

// Match is a query result. Score is higher-is-better (cosine similarity
// for vector stores).
type Match struct {
	Document Document
	Score    float64
}

// DeleteRequest removes documents by ID and/or filter.
type DeleteRequest struct {
	Collection string
	IDs        []string
	Filters    []Filter
}

// NotSupported can be embedded to satisfy Store while implementing only
// part of it; each method returns status.ErrNotSupported.
type NotSupported struct{}

func (NotSupported) ListCollections(context.Context) ([]Collection, error) {
	return nil, status.ErrNotSupported
}

func (NotSupported) CreateCollection(context.Context, string, int) (Collection, error) {
	return Collection{}, status.ErrNotSupported
}

func (NotSupported) DeleteCollection(context.Context, string) error {
	return status.ErrNotSupported
}

func (NotSupported) Upsert(context.Context, string, []Document) (int, error) {
	return 0, status.ErrNotSupported
}

func (NotSupported) Query(context.Context, *QueryRequest) ([]Match, error) {
	return nil, status.ErrNotSupported
}

func (NotSupported) Delete(context.Context, *DeleteRequest) (int, error) {
	return 0, status.ErrNotSupported
}
