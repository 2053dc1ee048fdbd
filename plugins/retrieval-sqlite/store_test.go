package main

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/sdk/retrieval"
	"github.com/nemoclave/nemoclave/sdk/status"
)

func randomDocs(r *rand.Rand, n, dims int) []retrieval.Document {
	docs := make([]retrieval.Document, n)
	for i := range docs {
		v := make([]float32, dims)
		for j := range v {
			v[j] = float32(r.NormFloat64())
		}
		docs[i] = retrieval.Document{ID: fmt.Sprintf("d%05d", i), Text: fmt.Sprintf("document %d", i), Vector: v,
			Metadata: map[string]any{"i": i, "even": i%2 == 0, "bucket": fmt.Sprint(i % 7)}}
	}
	return docs
}

// bruteForce is the reference: cosine similarity in float64 over every
// document passing the filters, sorted.
func bruteForce(docs []retrieval.Document, q []float32, k int, filters []retrieval.Filter) []string {
	type sc struct {
		id  string
		sim float64
	}
	norm := func(v []float32) float64 {
		var n float64
		for _, x := range v {
			n += float64(x) * float64(x)
		}
		return n
	}
	var all []sc
	for _, d := range docs {
		if ok, _ := retrieval.MatchFilters(d.Metadata, filters); !ok {
			continue
		}
		var dot float64
		for i := range q {
			dot += float64(q[i]) * float64(d.Vector[i])
		}
		all = append(all, sc{d.ID, dot / (math.Sqrt(norm(q)) * math.Sqrt(norm(d.Vector)))})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].sim > all[j].sim })
	var out []string
	for _, s := range all[:min(k, len(all))] {
		out = append(out, s.id)
	}
	return out
}

func openTest(t *testing.T, dir string, cfg config) *store {
	t.Helper()
	s, err := openStore(context.Background(), filepath.Join(dir, "retrieval.db"), nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ids(ms []retrieval.Match) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Document.ID)
	}
	return out
}

// TestParallelScanEqualsBruteForce: the in-memory scan split over
// goroutines (the collection is past minParallelSlots) returns exactly
// the brute-force top-10.
func TestParallelScanEqualsBruteForce(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(9, 9))
	// 24 dimensions take the float32 scan, 32 the two-pass int8 route;
	// the two-pass route is the default one, so it gets the split scan.
	for _, dims := range []int{24, 32} {
		n := 3000
		if dims == 32 {
			n = 2*minParallelSlots + 123
		}
		docs := randomDocs(r, n, dims)
		v := newVectors(dims)
		for i, d := range docs {
			v.put(d.ID, int64(i), unit(d.Vector), d.Metadata)
		}
		v.kill(docs[0].ID)
		even := []retrieval.Filter{{Field: "even", Op: retrieval.OpEq, Value: true}}
		for qi := range 10 {
			q := randomDocs(r, 1, dims)[0].Vector
			if qi%3 == 0 {
				q = docs[1+r.IntN(len(docs)-1)].Vector // its own document must come first
			}
			var fs []retrieval.Filter
			if qi%2 == 1 {
				fs = even
			}
			var got []string
			for _, h := range v.exact(unit(q), 10, fs) {
				got = append(got, v.ids[h.slot])
			}
			if want := bruteForce(docs[1:], q, 10, fs); !slices.Equal(got, want) {
				t.Fatalf("%d dims, filters %v: scan %v, brute force %v", dims, fs, got, want)
			}
		}
	}
}

// TestExactEqualsBruteForce: queries through the store return exactly the
// brute-force top-10, with and without filters, and again after the store
// is reopened from disk.
func TestExactEqualsBruteForce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(7, 7))
	docs := randomDocs(r, 1500, 48)
	cfg := defaultConfig()
	cfg.HNSWThreshold = 0
	s := openTest(t, dir, cfg)
	if _, err := s.CreateCollection(ctx, "c", 48); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Upsert(ctx, "c", docs); err != nil {
		t.Fatal(err)
	}
	filterSets := [][]retrieval.Filter{nil,
		{{Field: "even", Op: retrieval.OpEq, Value: true}},
		{{Field: "bucket", Op: retrieval.OpIn, Value: []any{"1", "3"}}, {Field: "i", Op: retrieval.OpLt, Value: 20000}},
	}
	check := func(s *store) {
		for qi := range 20 {
			q := docs[r.IntN(len(docs))].Vector
			if qi%2 == 1 {
				q = randomDocs(r, 1, 48)[0].Vector
			}
			fs := filterSets[qi%len(filterSets)]
			ms, err := s.Query(ctx, &retrieval.QueryRequest{Collection: "c", Vector: q, TopK: 10, Filters: fs})
			if err != nil {
				t.Fatal(err)
			}
			if want := bruteForce(docs, q, 10, fs); !slices.Equal(ids(ms), want) {
				t.Fatalf("query %d filters %v: got %v, brute force %v", qi, fs, ids(ms), want)
			}
		}
	}
	check(s)
	s.Close()
	check(openTest(t, dir, cfg))
}

// TestHNSWRecall builds the graph in the background, measures recall@10
// against exact search (floor 0.95 at ef_construction 48 and the default
// ef_search; the 100k numbers are in BENCHMARKS.md), and checks that upserts and deletes after the
// build are visible at once.
func TestHNSWRecall(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := rand.New(rand.NewPCG(3, 4))
	const n, dims = 1500, 32
	docs := randomDocs(r, n, dims)
	cfg := defaultConfig()
	cfg.HNSWThreshold = 500
	cfg.EfConstruction = 48 // a cheaper build under -race; the floor holds at the default search beam
	s := openTest(t, t.TempDir(), cfg)
	if _, err := s.CreateCollection(ctx, "c", dims); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Upsert(ctx, "c", docs); err != nil {
		t.Fatal(err)
	}
	c, _ := s.get("c")
	waitIndexed(t, c)

	var found, total int
	for range 100 {
		q := randomDocs(r, 1, dims)[0].Vector
		ms, err := s.Query(ctx, &retrieval.QueryRequest{Collection: "c", Vector: q, TopK: 10})
		if err != nil {
			t.Fatal(err)
		}
		want := bruteForce(docs, q, 10, nil)
		for _, id := range ids(ms) {
			if slices.Contains(want, id) {
				found++
			}
		}
		total += len(want)
	}
	recall := float64(found) / float64(total)
	t.Logf("HNSW recall@10 over %d vectors: %.3f", n, recall)
	if recall < 0.95 {
		t.Fatalf("HNSW recall@10 = %.3f, below the 0.95 floor", recall)
	}

	// A new document is found by its own vector immediately; a deleted
	// one never comes back.
	extra := randomDocs(r, 1, dims)[0]
	extra.ID = "extra"
	if _, err := s.Upsert(ctx, "c", []retrieval.Document{extra}); err != nil {
		t.Fatal(err)
	}
	ms, err := s.Query(ctx, &retrieval.QueryRequest{Collection: "c", Vector: extra.Vector, TopK: 3})
	if err != nil || len(ms) == 0 || ms[0].Document.ID != "extra" {
		t.Fatalf("new document not first: %v %v", ids(ms), err)
	}
	if n, err := s.Delete(ctx, &retrieval.DeleteRequest{Collection: "c", IDs: []string{"extra", docs[0].ID}}); err != nil || n != 2 {
		t.Fatalf("delete: %d %v", n, err)
	}
	for _, q := range [][]float32{extra.Vector, docs[0].Vector} {
		ms, err := s.Query(ctx, &retrieval.QueryRequest{Collection: "c", Vector: q, TopK: 10})
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(ms); slices.Contains(got, "extra") || slices.Contains(got, docs[0].ID) || len(got) != 10 {
			t.Fatalf("deleted document returned or short result: %v", got)
		}
	}
}

func waitIndexed(t *testing.T, c *collection) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		c.mu.RLock()
		done := c.ann != nil
		c.mu.RUnlock()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("HNSW index not built within 60s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCompaction: once dead slots outnumber live ones they are dropped,
// and queries stay exact.
func TestCompaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := rand.New(rand.NewPCG(5, 6))
	docs := randomDocs(r, 1300, 16)
	cfg := defaultConfig()
	cfg.HNSWThreshold = 0
	s := openTest(t, t.TempDir(), cfg)
	if _, err := s.CreateCollection(ctx, "c", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Upsert(ctx, "c", docs); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Delete(ctx, &retrieval.DeleteRequest{Collection: "c", Filters: []retrieval.Filter{{Field: "i", Op: retrieval.OpGte, Value: 200}}}); err != nil || n != 1100 {
		t.Fatalf("delete by filter = %d, %v", n, err)
	}
	c, _ := s.get("c")
	c.mu.RLock()
	dead, slots := c.vec.dead, len(c.vec.ids)
	c.mu.RUnlock()
	if dead != 0 || slots != 200 {
		t.Fatalf("after deleting 1100 of 1300: %d dead of %d slots, want compacted to 200", dead, slots)
	}
	q := docs[5].Vector
	ms, _ := s.Query(ctx, &retrieval.QueryRequest{Collection: "c", Vector: q, TopK: 10})
	if want := bruteForce(docs[:200], q, 10, nil); !slices.Equal(ids(ms), want) {
		t.Fatalf("after compaction got %v, want %v", ids(ms), want)
	}
	if cols, _ := s.ListCollections(ctx); len(cols) != 1 || cols[0].Count != 200 || cols[0].Dimensions != 16 {
		t.Fatalf("collections = %+v", cols)
	}
}

func TestKeywordQueryWithoutEmbedder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openTest(t, t.TempDir(), defaultConfig())
	if _, err := s.CreateCollection(ctx, "notes", 0); err != nil {
		t.Fatal(err)
	}
	docs := []retrieval.Document{
		{ID: "k8s", Text: "Deploying services to Kubernetes with Helm", Metadata: map[string]any{"lang": "en"}},
		{ID: "k8s-de", Text: "Kubernetes Dienste bereitstellen", Metadata: map[string]any{"lang": "de"}},
		{ID: "tea", Text: "Green tea brewing temperatures", Metadata: map[string]any{"lang": "en"}},
	}
	if _, err := s.Upsert(ctx, "notes", docs); err != nil {
		t.Fatal(err)
	}
	ms, err := s.Query(ctx, &retrieval.QueryRequest{Collection: "notes", Text: "deploy kubernetes", TopK: 5})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(ms); len(got) != 2 || got[0] != "k8s" || ms[0].Score != 1 || ms[1].Score <= 0 || ms[1].Score > 1 {
		t.Fatalf("BM25 query = %v %+v", got, ms)
	}
	ms, _ = s.Query(ctx, &retrieval.QueryRequest{Collection: "notes", Text: "kubernetes", Filters: []retrieval.Filter{{Field: "lang", Op: retrieval.OpEq, Value: "de"}}})
	if got := ids(ms); !slices.Equal(got, []string{"k8s-de"}) {
		t.Fatalf("filtered BM25 = %v", got)
	}
	if _, err := s.Upsert(ctx, "notes", []retrieval.Document{{ID: "empty"}}); status.CodeOf(err) != status.InvalidArgument {
		t.Fatalf("document with neither text nor vector: %v", err)
	}
	if _, err := s.Query(ctx, &retrieval.QueryRequest{Collection: "notes", Text: "x", Filters: []retrieval.Filter{{Field: "a", Op: "like"}}}); status.CodeOf(err) != status.InvalidArgument {
		t.Fatalf("unknown op: %v", err)
	}
}
