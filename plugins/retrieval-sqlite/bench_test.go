package main

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/sdk/retrieval"
)

// The store benchmarks (bench/stores.sh, recorded in BENCHMARKS.md) run
// once with -benchtime=1x: each builds its data set, then measures a fixed
// number of queries itself and reports p50/p99 and recall as metrics.
// NEMOCLAVE_BENCH_VECTORS overrides the 100k size for quick runs.

func benchSize() int {
	if n, err := strconv.Atoi(os.Getenv("NEMOCLAVE_BENCH_VECTORS")); err == nil && n > 0 {
		return n
	}
	return 100_000
}

// embeddingLike mimics sentence embeddings, whose variance lies in a few
// dozen directions: each vector is a random 32-dimensional latent point
// mapped into the full space by one fixed random matrix, plus 10%
// isotropic noise. (Uniform noise in all 384 dimensions would make every
// point nearly equidistant, which no index and no real embedder shows.)
type embeddingLike struct {
	r    *rand.Rand
	proj [][]float32 // 32 × dims
}

func newEmbeddingLike(seed uint64, dims int) *embeddingLike {
	r := rand.New(rand.NewPCG(seed, seed))
	e := &embeddingLike{r: r, proj: make([][]float32, 32)}
	for i := range e.proj {
		e.proj[i] = make([]float32, dims)
		for j := range e.proj[i] {
			e.proj[i][j] = float32(r.NormFloat64())
		}
	}
	return e
}

func (e *embeddingLike) vector() []float32 {
	dims := len(e.proj[0])
	v := make([]float32, dims)
	for _, row := range e.proj {
		z := float32(e.r.NormFloat64())
		for j := range v {
			v[j] += z * row[j]
		}
	}
	for j := range v {
		v[j] += 0.1 * float32(e.r.NormFloat64()) * float32(math.Sqrt(32))
	}
	return v
}

func (e *embeddingLike) docs(n int) []retrieval.Document {
	docs := make([]retrieval.Document, n)
	for i := range docs {
		docs[i] = retrieval.Document{ID: fmt.Sprintf("d%06d", i), Text: "doc " + strconv.Itoa(i), Vector: e.vector(),
			Metadata: map[string]any{"i": i}}
	}
	return docs
}

// plainTopK is the baseline: brute force in a plain Go loop, one
// accumulator, every score kept and sorted.
func plainTopK(vecs [][]float32, ids []string, q []float32, k int) []string {
	type sc struct {
		i   int
		sim float32
	}
	all := make([]sc, len(vecs))
	for i, v := range vecs {
		var s float32
		for j := range v {
			s += v[j] * q[j]
		}
		all[i] = sc{i, s}
	}
	sort.Slice(all, func(a, b int) bool { return all[a].sim > all[b].sim })
	out := make([]string, k)
	for i := range out {
		out[i] = ids[all[i].i]
	}
	return out
}

func percentile(ds []time.Duration, p float64) float64 {
	s := slices.Clone(ds)
	slices.Sort(s)
	return float64(s[min(len(s)-1, int(p*float64(len(s))))].Microseconds()) / 1000
}

func recallAt(got, want []string) float64 {
	n := 0
	for _, id := range got {
		if slices.Contains(want, id) {
			n++
		}
	}
	return float64(n) / float64(len(want))
}

func loadBench(b *testing.B, cfg config, docs []retrieval.Document, dims int) *store {
	ctx := context.Background()
	s, err := openStore(ctx, b.TempDir()+"/retrieval.db", nil, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	if _, err := s.CreateCollection(ctx, "bench", dims); err != nil {
		b.Fatal(err)
	}
	for lo := 0; lo < len(docs); lo += 5000 {
		if _, err := s.Upsert(ctx, "bench", docs[lo:min(lo+5000, len(docs))]); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

// BenchmarkStoresRetrievalExact: top-10 through the store (exact scan plus
// loading the 10 documents from SQLite), alternated with the plain-loop
// baseline on the same queries.
func BenchmarkStoresRetrievalExact(b *testing.B) {
	const dims, queries = 384, 300
	n := benchSize()
	gen := newEmbeddingLike(1, dims)
	docs := gen.docs(n)
	cfg := defaultConfig()
	cfg.HNSWThreshold = 0
	s := loadBench(b, cfg, docs, dims)
	vecs := make([][]float32, n)
	docIDs := make([]string, n)
	for i, d := range docs {
		vecs[i], docIDs[i] = unit(d.Vector), d.ID
	}
	ctx := context.Background()
	for b.Loop() {
		var tStore, tPlain []time.Duration
		var rec float64
		for qi := range queries + 20 {
			q := unit(gen.vector())
			t0 := time.Now()
			ms, err := s.Query(ctx, &retrieval.QueryRequest{Collection: "bench", Vector: q, TopK: 10})
			t1 := time.Now()
			want := plainTopK(vecs, docIDs, q, 10)
			t2 := time.Now()
			if err != nil {
				b.Fatal(err)
			}
			if qi < 20 {
				continue // warm-up
			}
			tStore, tPlain = append(tStore, t1.Sub(t0)), append(tPlain, t2.Sub(t1))
			rec += recallAt(ids(ms), want)
		}
		b.ReportMetric(percentile(tStore, 0.5), "p50-ms")
		b.ReportMetric(percentile(tStore, 0.99), "p99-ms")
		b.ReportMetric(rec/queries, "recall@10")
		b.ReportMetric(percentile(tPlain, 0.5), "baseline-p50-ms")
		b.ReportMetric(percentile(tPlain, 0.99), "baseline-p99-ms")
	}
}

// BenchmarkStoresRetrievalHNSW: the same queries through the HNSW graph,
// recall measured against the exact scan.
func BenchmarkStoresRetrievalHNSW(b *testing.B) {
	const dims, queries = 384, 300
	n := benchSize()
	gen := newEmbeddingLike(1, dims)
	docs := gen.docs(n)
	cfg := defaultConfig()
	cfg.HNSWThreshold = n // the build starts with the last batch
	s := loadBench(b, cfg, docs, dims)
	c, _ := s.get("bench")
	start := time.Now()
	for {
		c.mu.RLock()
		done := c.ann != nil
		c.mu.RUnlock()
		if done {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	build := time.Since(start)
	ctx := context.Background()
	for b.Loop() {
		// One graph, several search beams: recall against the exact scan
		// and latency for each hnsw_ef_search.
		for _, ef := range []int{64, 96, 160, 256} {
			c.ann.mu.Lock()
			c.ann.p.EfSearch = ef
			c.ann.mu.Unlock()
			var tANN []time.Duration
			var rec float64
			for qi := range queries + 20 {
				q := unit(gen.vector())
				t0 := time.Now()
				ms, err := s.Query(ctx, &retrieval.QueryRequest{Collection: "bench", Vector: q, TopK: 10})
				t1 := time.Now()
				if err != nil {
					b.Fatal(err)
				}
				c.mu.RLock()
				var want []string
				for _, h := range c.vec.exact(q, 10, nil) {
					want = append(want, c.vec.ids[h.slot])
				}
				c.mu.RUnlock()
				if qi < 20 {
					continue
				}
				tANN = append(tANN, t1.Sub(t0))
				rec += recallAt(ids(ms), want)
			}
			name := fmt.Sprintf("ef%d-", ef)
			b.ReportMetric(percentile(tANN, 0.5), name+"p50-ms")
			b.ReportMetric(percentile(tANN, 0.99), name+"p99-ms")
			b.ReportMetric(rec/queries, name+"recall@10")
		}
		b.ReportMetric(build.Seconds(), "build-s")
	}
}
