package retrieval_test

import (
	"context"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/retrieval"
	"github.com/nemoclave/nemoclave/sdk/status"
)

// recorder is a retrieval plugin that records each call's arguments and
// answers as scripted.
type recorder struct {
	plugin.Base
	cols    []retrieval.Collection
	matches []retrieval.Match
	n       int
	err     error

	mu  sync.Mutex
	got []any
}

func (*recorder) Info() plugin.Info {
	return plugin.Info{Name: "recorder", Version: "0.0.1", Kinds: []plugin.Kind{plugin.KindRetrieval}}
}

func (r *recorder) record(args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = args
}

func (r *recorder) ListCollections(context.Context) ([]retrieval.Collection, error) {
	r.record()
	return r.cols, r.err
}
func (r *recorder) CreateCollection(_ context.Context, name string, dims int) (retrieval.Collection, error) {
	r.record(name, dims)
	return retrieval.Collection{Name: name, Dimensions: dims}, r.err
}
func (r *recorder) DeleteCollection(_ context.Context, name string) error {
	r.record(name)
	return r.err
}
func (r *recorder) Upsert(_ context.Context, col string, docs []retrieval.Document) (int, error) {
	r.record(col, docs)
	return len(docs), r.err
}
func (r *recorder) Query(_ context.Context, req *retrieval.QueryRequest) ([]retrieval.Match, error) {
	r.record(req)
	return r.matches, r.err
}
func (r *recorder) Delete(_ context.Context, req *retrieval.DeleteRequest) (int, error) {
	r.record(req)
	return r.n, r.err
}

var docs = []retrieval.Document{
	{ID: "a", Text: "alpha", Vector: []float32{1, 0, 0}, Metadata: map[string]any{"lang": "go", "stars": 3.0, "tags": []any{"x"}}},
	{ID: "b", Text: "beta"},
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	filters := []retrieval.Filter{
		{Field: "lang", Op: retrieval.OpIn, Value: []any{"go", "rust"}},
		{Field: "stars", Op: retrieval.OpGte, Value: 2.0},
		{Field: "draft", Op: retrieval.OpExists, Value: false},
		{Field: "archived", Op: retrieval.OpExists},
	}
	for _, tc := range []struct {
		name     string
		rec      *recorder
		do       func(retrieval.Store) (any, error)
		wantArgs []any
		want     any
	}{
		{"list", &recorder{cols: []retrieval.Collection{{Name: "c", Dimensions: 3, Count: 2}}},
			func(s retrieval.Store) (any, error) { return s.ListCollections(ctx) },
			nil, []retrieval.Collection{{Name: "c", Dimensions: 3, Count: 2}}},
		{"create", &recorder{},
			func(s retrieval.Store) (any, error) { return s.CreateCollection(ctx, "c", 384) },
			[]any{"c", 384}, retrieval.Collection{Name: "c", Dimensions: 384}},
		{"delete collection", &recorder{},
			func(s retrieval.Store) (any, error) { return nil, s.DeleteCollection(ctx, "c") },
			[]any{"c"}, nil},
		{"upsert", &recorder{},
			func(s retrieval.Store) (any, error) { return s.Upsert(ctx, "c", docs) },
			[]any{"c", docs}, 2},
		{"query", &recorder{matches: []retrieval.Match{{Document: docs[0], Score: 0.99}, {Document: docs[1], Score: 0.1}}},
			func(s retrieval.Store) (any, error) {
				return s.Query(ctx, &retrieval.QueryRequest{Collection: "c", Text: "al", Vector: []float32{0.5, 0.5, 0}, TopK: 2, Filters: filters, IncludeVectors: true})
			},
			[]any{&retrieval.QueryRequest{Collection: "c", Text: "al", Vector: []float32{0.5, 0.5, 0}, TopK: 2, Filters: filters, IncludeVectors: true}},
			[]retrieval.Match{{Document: docs[0], Score: 0.99}, {Document: docs[1], Score: 0.1}}},
		{"delete", &recorder{n: 5},
			func(s retrieval.Store) (any, error) {
				return s.Delete(ctx, &retrieval.DeleteRequest{Collection: "c", IDs: []string{"a"}, Filters: filters[:1]})
			},
			[]any{&retrieval.DeleteRequest{Collection: "c", IDs: []string{"a"}, Filters: filters[:1]}}, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := tc.do(plugin.InProcess(t, tc.rec).Retrieval())
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.wantArgs, tc.rec.got, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("arguments the plugin saw (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("result (-want +got):\n%s", d)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rec := &recorder{err: status.Errorf(status.NotFound, "no collection %q", "c")}
	s := plugin.InProcess(t, rec).Retrieval()
	if _, err := s.Query(ctx, &retrieval.QueryRequest{Collection: "c", Text: "x"}); status.CodeOf(err) != status.NotFound {
		t.Errorf("Query: %v, want NotFound", err)
	}
	if err := s.DeleteCollection(ctx, "c"); status.CodeOf(err) != status.NotFound {
		t.Errorf("DeleteCollection: %v, want NotFound", err)
	}
	rec.mu.Lock()
	rec.got = []any{"untouched"}
	rec.mu.Unlock()
	_, err := s.Query(ctx, &retrieval.QueryRequest{Collection: "c", Filters: []retrieval.Filter{{Field: "a", Op: "like"}}})
	if status.CodeOf(err) != status.InvalidArgument {
		t.Errorf("malformed filter: %v, want InvalidArgument", err)
	}
	if rec.got[0] != "untouched" {
		t.Error("a malformed filter reached the plugin; the client should reject it first")
	}
	var ns retrieval.NotSupported
	if _, err := ns.Query(ctx, nil); status.CodeOf(err) != status.NotSupported {
		t.Errorf("NotSupported.Query: %v", err)
	}
}
