package sdktest

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/retrieval"
	"github.com/nemoclave/nemoclave/sdk/status"
)

// retrievalDocs are the suite's documents; their metadata exercises every
// filter op.
var retrievalDocs = []retrieval.Document{
	{ID: "doc-a", Text: "Go is a statically typed compiled language.", Metadata: map[string]any{"lang": "go", "stars": 10, "tags": []any{"x", "y"}, "year": "2024-05-01"}},
	{ID: "doc-b", Text: "Rust guarantees memory safety without a garbage collector.", Metadata: map[string]any{"lang": "rust", "stars": 5, "tags": []any{"y"}}},
	{ID: "doc-c", Text: "The quick brown fox jumps over the lazy dog.", Metadata: map[string]any{"lang": "go", "stars": 1, "draft": true}},
	{ID: "doc-d", Text: "Python reads like executable pseudocode.", Metadata: map[string]any{"lang": "python", "stars": 20, "year": "2019-01-01"}},
}

// retrievalFilterCases are checked against MatchFilters over
// retrievalDocs: a store must return exactly the documents it accepts.
var retrievalFilterCases = [][]retrieval.Filter{
	{{Field: "lang", Op: retrieval.OpEq, Value: "go"}},
	{{Field: "lang", Op: retrieval.OpNe, Value: "go"}},
	{{Field: "lang", Op: retrieval.OpIn, Value: []any{"rust", "python"}}},
	{{Field: "stars", Op: retrieval.OpGt, Value: 5}},
	{{Field: "stars", Op: retrieval.OpGte, Value: 5}},
	{{Field: "stars", Op: retrieval.OpLt, Value: 5}},
	{{Field: "stars", Op: retrieval.OpLte, Value: 10}},
	{{Field: "draft", Op: retrieval.OpExists}},
	{{Field: "draft", Op: retrieval.OpExists, Value: false}},
	{{Field: "tags", Op: retrieval.OpEq, Value: "y"}},
	{{Field: "year", Op: retrieval.OpLt, Value: "2020-01-01"}},
	{{Field: "lang", Op: retrieval.OpEq, Value: "go"}, {Field: "stars", Op: retrieval.OpGte, Value: 5}},
	{{Field: "lang", Op: retrieval.OpEq, Value: "cobol"}},
}

// Retrieval checks the Store contract: collections are created
// (idempotently), listed with their count and deleted; upserted documents
// come back first for their own vector (and text, WithTextQueries) with
// their text and metadata, scores descending, vectors only on request;
// every filter op selects exactly what MatchFilters selects; upsert
// replaces by ID; delete by ID and by filter removes; malformed requests
// are InvalidArgument and unknown collections NotFound.
func Retrieval(t *testing.T, p plugin.Plugin, opts ...Option) {
	t.Helper()
	o := collect(opts)
	ctx := suiteContext(t, o)
	c, _ := start(t, p, o)
	s := c.Retrieval()
	dims := o.dimensions
	if dims < 2 {
		t.Fatalf("sdktest.WithDimensions(%d): the suite needs at least 2 dimensions to tell documents apart", dims)
	}
	name := fmt.Sprintf("sdktest-%d", time.Now().UnixNano())
	t.Cleanup(func() { _ = s.DeleteCollection(ctx, name) })

	col, err := s.CreateCollection(ctx, name, dims)
	if err != nil {
		t.Fatalf("CreateCollection(%q, %d): %v", name, dims, err)
	}
	if col.Name != name || col.Dimensions != dims {
		t.Errorf("CreateCollection returned %+v, want name %q and %d dimensions", col, name, dims)
	}
	if _, err := s.CreateCollection(ctx, name, dims); err != nil {
		t.Errorf("creating an existing collection with the same dimensions must succeed (setup code runs on every start): %v", err)
	}

	docs := make([]retrieval.Document, len(retrievalDocs))
	for i, d := range retrievalDocs {
		d.Vector = testVector(i, dims)
		docs[i] = d
	}
	n, err := s.Upsert(ctx, name, docs)
	if err != nil {
		t.Fatalf("Upsert: %v", err)
	}
	if n != len(docs) {
		t.Errorf("Upsert reported %d documents written, want %d", n, len(docs))
	}
	checkCount(t, s, name, int64(len(docs)))

	t.Run("query by vector", func(t *testing.T) {
		for i, d := range docs {
			ms, err := s.Query(ctx, &retrieval.QueryRequest{Collection: name, Vector: d.Vector, TopK: len(docs)})
			if err != nil {
				t.Fatalf("Query: %v", err)
			}
			if len(ms) == 0 || ms[0].Document.ID != d.ID {
				t.Fatalf("query by %s's own vector returned %v first; want %s", d.ID, matchIDs(ms), d.ID)
			}
			if !sort.SliceIsSorted(ms, func(a, b int) bool { return ms[a].Score > ms[b].Score }) {
				t.Errorf("matches are not sorted best first: %v", matchScores(ms))
			}
			got := ms[0].Document
			if got.Text != d.Text || !sameJSON(got.Metadata, retrievalDocs[i].Metadata) {
				t.Errorf("%s came back as text %q metadata %v; want %q %v", d.ID, got.Text, got.Metadata, d.Text, retrievalDocs[i].Metadata)
			}
			if len(got.Vector) != 0 {
				t.Errorf("%s came back with its vector although IncludeVectors was false", d.ID)
			}
		}
		ms, err := s.Query(ctx, &retrieval.QueryRequest{Collection: name, Vector: docs[0].Vector, TopK: 1, IncludeVectors: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != 1 {
			t.Fatalf("TopK 1 returned %d matches", len(ms))
		}
		if !sameVector(ms[0].Document.Vector, docs[0].Vector) {
			t.Errorf("IncludeVectors returned %v, want %v", ms[0].Document.Vector, docs[0].Vector)
		}
	})

	t.Run("filters agree with MatchFilters", func(t *testing.T) {
		for _, fs := range retrievalFilterCases {
			var want []string
			for _, d := range retrievalDocs {
				ok, err := retrieval.MatchFilters(d.Metadata, fs)
				if err != nil {
					t.Fatal(err)
				}
				if ok {
					want = append(want, d.ID)
				}
			}
			ms, err := s.Query(ctx, &retrieval.QueryRequest{Collection: name, Vector: docs[0].Vector, TopK: 10, Filters: fs})
			if err != nil {
				t.Errorf("Query with filters %+v: %v", fs, err)
				continue
			}
			got := matchIDs(ms)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("filters %+v selected %v; MatchFilters selects %v", fs, got, want)
			}
		}
	})

	t.Run("invalid requests", func(t *testing.T) {
		_, err := s.Query(ctx, &retrieval.QueryRequest{Collection: name, Vector: make([]float32, dims+1), TopK: 1})
		if status.CodeOf(err) != status.InvalidArgument {
			t.Errorf("query with a %d-dimension vector in a %d-dimension collection: %v, want InvalidArgument", dims+1, dims, err)
		}
		if _, err := s.Delete(ctx, &retrieval.DeleteRequest{Collection: name}); status.CodeOf(err) != status.InvalidArgument {
			t.Errorf("Delete with neither IDs nor filters: %v, want InvalidArgument (it must not empty the collection)", err)
		}
		if _, err := s.Query(ctx, &retrieval.QueryRequest{Collection: name, TopK: 1}); status.CodeOf(err) != status.InvalidArgument {
			t.Errorf("Query with neither text nor vector: %v, want InvalidArgument", err)
		}
	})

	t.Run("unknown collection", func(t *testing.T) {
		missing := name + "-missing"
		if _, err := s.Query(ctx, &retrieval.QueryRequest{Collection: missing, Vector: docs[0].Vector}); status.CodeOf(err) != status.NotFound {
			t.Errorf("Query: %v, want NotFound", err)
		}
		if _, err := s.Upsert(ctx, missing, docs[:1]); status.CodeOf(err) != status.NotFound {
			t.Errorf("Upsert: %v, want NotFound (collections are created explicitly)", err)
		}
		if _, err := s.Delete(ctx, &retrieval.DeleteRequest{Collection: missing, IDs: []string{"x"}}); status.CodeOf(err) != status.NotFound {
			t.Errorf("Delete: %v, want NotFound", err)
		}
		if err := s.DeleteCollection(ctx, missing); status.CodeOf(err) != status.NotFound {
			t.Errorf("DeleteCollection: %v, want NotFound", err)
		}
	})

	t.Run("upsert replaces and delete removes", func(t *testing.T) {
		changed := docs[0]
		changed.Metadata = map[string]any{"lang": "zig"}
		if _, err := s.Upsert(ctx, name, []retrieval.Document{changed}); err != nil {
			t.Fatal(err)
		}
		checkCount(t, s, name, int64(len(docs)))
		expectIDs(t, s, name, docs[0].Vector, []retrieval.Filter{{Field: "lang", Op: retrieval.OpEq, Value: "zig"}}, []string{"doc-a"})

		if n, err := s.Delete(ctx, &retrieval.DeleteRequest{Collection: name, IDs: []string{"doc-b", "no-such-doc"}}); err != nil || n != 1 {
			t.Errorf("Delete by IDs = %d, %v; want 1 (unknown IDs are not errors)", n, err)
		}
		if n, err := s.Delete(ctx, &retrieval.DeleteRequest{Collection: name, Filters: []retrieval.Filter{{Field: "lang", Op: retrieval.OpEq, Value: "python"}}}); err != nil || n != 1 {
			t.Errorf("Delete by filter = %d, %v; want 1", n, err)
		}
		expectIDs(t, s, name, docs[0].Vector, nil, []string{"doc-a", "doc-c"})
		checkCount(t, s, name, 2)
	})

	if o.textQueries {
		t.Run("query by text", func(t *testing.T) {
			tname := name + "-text"
			t.Cleanup(func() { _ = s.DeleteCollection(ctx, tname) })
			if _, err := s.CreateCollection(ctx, tname, 0); err != nil {
				t.Fatalf("CreateCollection(%q, 0): %v", tname, err)
			}
			if _, err := s.Upsert(ctx, tname, retrievalDocs); err != nil {
				t.Fatalf("Upsert without vectors (WithTextQueries): %v", err)
			}
			for _, d := range retrievalDocs {
				ms, err := s.Query(ctx, &retrieval.QueryRequest{Collection: tname, Text: d.Text, TopK: 2})
				if err != nil {
					t.Fatalf("Query by text: %v", err)
				}
				if len(ms) == 0 || ms[0].Document.ID != d.ID {
					t.Errorf("query by %s's own text returned %v first", d.ID, matchIDs(ms))
				}
			}
		})
	}

	t.Run("delete collection", func(t *testing.T) {
		if err := s.DeleteCollection(ctx, name); err != nil {
			t.Fatal(err)
		}
		cols, err := s.ListCollections(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, col := range cols {
			if col.Name == name {
				t.Errorf("%s is still listed after DeleteCollection", name)
			}
		}
		if _, err := s.Query(ctx, &retrieval.QueryRequest{Collection: name, Vector: docs[0].Vector}); status.CodeOf(err) != status.NotFound {
			t.Errorf("Query on a deleted collection: %v, want NotFound", err)
		}
	})
}

func checkCount(t *testing.T, s retrieval.Store, name string, want int64) {
	t.Helper()
	cols, err := s.ListCollections(t.Context())
	if err != nil {
		t.Fatalf("ListCollections: %v", err)
	}
	for _, col := range cols {
		if col.Name == name {
			if col.Count != want {
				t.Errorf("collection %s has Count %d, want %d", name, col.Count, want)
			}
			return
		}
	}
	t.Errorf("ListCollections does not list %s", name)
}

func expectIDs(t *testing.T, s retrieval.Store, name string, vec []float32, fs []retrieval.Filter, want []string) {
	t.Helper()
	ms, err := s.Query(t.Context(), &retrieval.QueryRequest{Collection: name, Vector: vec, TopK: 10, Filters: fs})
	if err != nil {
		t.Fatalf("Query: %v", err)
	}
	got := matchIDs(ms)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("query found %v, want %v", got, want)
	}
}

// testVector is a unit vector distinct in direction for every i, so a
// document's own vector is its nearest neighbour under cosine, dot
// product and euclidean distance alike.
func testVector(i, dims int) []float32 {
	v := make([]float32, dims)
	var norm float64
	for j := range v {
		x := math.Sin(float64((i+1)*(j+1))*0.7 + float64(i))
		v[j] = float32(x)
		norm += x * x
	}
	for j := range v {
		v[j] = float32(float64(v[j]) / math.Sqrt(norm))
	}
	return v
}

func matchIDs(ms []retrieval.Match) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Document.ID
	}
	return out
}

func matchScores(ms []retrieval.Match) []float64 {
	out := make([]float64, len(ms))
	for i, m := range ms {
		out[i] = m.Score
	}
	return out
}

// sameJSON compares metadata as JSON values, since numbers cross the wire
// as float64.
func sameJSON(a, b map[string]any) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	var x, y any
	ab, err1 := json.Marshal(a)
	bb, err2 := json.Marshal(b)
	if err1 != nil || err2 != nil || json.Unmarshal(ab, &x) != nil || json.Unmarshal(bb, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}
