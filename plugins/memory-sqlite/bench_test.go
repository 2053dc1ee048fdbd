package main

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/sdk/memory"
	"github.com/nemoclave/nemoclave/sdk/plugin"
)

// syntheticText draws n words from a fixed vocabulary of 3000 made-up
// words with a skewed (Zipf-like) frequency, like real notes.
func syntheticText(r *rand.Rand, vocab []string, n int) string {
	words := make([]string, n)
	for i := range words {
		words[i] = vocab[int(float64(len(vocab))*r.Float64()*r.Float64())]
	}
	return strings.Join(words, " ")
}

func vocabulary() []string {
	syll := []string{"ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "pa", "qu", "dri", "sto", "ben", "gal"}
	var out []string
	for _, a := range syll {
		for _, b := range syll {
			for _, c := range syll {
				out = append(out, a+b+c)
			}
		}
	}
	return out[:3000]
}

// BenchmarkStoresMemoryRecall: hybrid recall over 10k memories of one
// user, each embedded by the real embeddings-hash plugin (384 dims) in
// its own process; the measured call includes embedding the query over
// gRPC, FTS5 BM25, the vector scan and loading the results. Run once
// (-benchtime=1x); it reports p50/p99 itself.
func BenchmarkStoresMemoryRecall(b *testing.B) {
	const n, queries = 10_000, 300
	ctx := context.Background()
	bin := pluginBinary(b, "embeddings-hash")
	e, err := plugin.Launch(ctx, plugin.LaunchOptions{Path: bin})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(e.Kill)
	if ds, err := e.Configure(ctx, plugin.ConfigureOptions{Config: json.RawMessage(`{"dimensions":384}`)}); err != nil || len(ds) > 0 {
		b.Fatalf("configure embedder: %v %+v", err, ds)
	}
	s, err := openStore(ctx, filepath.Join(b.TempDir(), "memory.db"), e.Embeddings(), defaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	r := rand.New(rand.NewPCG(1, 1))
	vocab := vocabulary()
	sc := memory.Scope{Agent: "bench", User: "u", Session: "s"}
	// Bulk load: embed in batches, insert in one transaction; the plain
	// Remember path (one fsync each) is what the SIGKILL test covers.
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	for lo := 0; lo < n; lo += 250 {
		texts := make([]string, 250)
		for i := range texts {
			texts[i] = syntheticText(r, vocab, 8+r.IntN(12))
		}
		vecs, model, err := s.embed(ctx, texts)
		if err != nil {
			b.Fatal(err)
		}
		for i, txt := range texts {
			if _, err := tx.ExecContext(ctx, `INSERT INTO memories(id, agent, user, session, text, metadata, created_ms, model, vector) VALUES (?,?,?,?,?,'{}',?,?,?)`,
				newID(), sc.Agent, sc.User, "", txt, time.Now().UnixMilli(), model, encodeVector(vecs[i])); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	s.vecs = newVectorIndex()
	if err := s.loadVectors(ctx); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		var ds []time.Duration
		for qi := range queries + 20 {
			q := syntheticText(r, vocab, 2+r.IntN(4))
			t0 := time.Now()
			got, err := s.Recall(ctx, sc, q, 10, 0)
			d := time.Since(t0)
			if err != nil || len(got) == 0 {
				b.Fatalf("recall %q: %d results, %v", q, len(got), err)
			}
			if qi >= 20 {
				ds = append(ds, d)
			}
		}
		slices.Sort(ds)
		b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(ds[len(ds)*99/100].Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(n), "memories")
	}
}
