package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/retrieval"
	"github.com/nemoclave/nemoclave/sdk/sdktest"
)

// The servers come from scripts/test-postgres.sh (sourced by .ci/run):
// PGlite with pgvector for everything vector, Debian's PostgreSQL 15
// (no pgvector) for the missing-extension error. Tests skip only when a
// URL is unset.
func serverURL(t *testing.T, env string) string {
	t.Helper()
	u := os.Getenv(env)
	if u == "" {
		t.Skipf("%s is unset; run `. scripts/test-postgres.sh` to start the test databases", env)
	}
	return u
}

func cfgJSON(dsn string) string {
	b, _ := json.Marshal(map[string]any{"dsn": dsn, "max_connections": 4})
	return string(b)
}

func TestConformance(t *testing.T) {
	t.Parallel()
	url := serverURL(t, "NEMOCLAVE_TEST_PGVECTOR_URL")
	opts := []sdktest.Option{sdktest.WithConfig(cfgJSON(url)), sdktest.WithTimeout(2 * time.Minute)}
	sdktest.Common(t, newPlugin(), opts...)
	sdktest.Retrieval(t, newPlugin(), append(opts, sdktest.WithDimensions(8))...)
	t.Run("full-text queries without an embedder", func(t *testing.T) {
		sdktest.Retrieval(t, newPlugin(), append(opts, sdktest.WithDimensions(8), sdktest.WithTextQueries())...)
	})
}

func TestNeedsPgvector(t *testing.T) {
	t.Parallel()
	url := serverURL(t, "NEMOCLAVE_TEST_POSTGRES_URL")
	c := plugin.InProcess(t, newPlugin())
	ds, err := c.Configure(context.Background(), plugin.ConfigureOptions{Config: json.RawMessage(cfgJSON(url))})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || !strings.Contains(ds[0].Detail, "pgvector extension") {
		t.Fatalf("configure on PostgreSQL without pgvector: %+v; want a diagnostic naming the pgvector extension", ds)
	}
}

// TestAgainstBruteForce: filtered queries (exact by design) return the
// brute-force top-10; unfiltered ones go through the HNSW index and
// must reach recall@10 >= 0.9 on this small clustered set.
func TestAgainstBruteForce(t *testing.T) {
	t.Parallel()
	url := serverURL(t, "NEMOCLAVE_TEST_PGVECTOR_URL")
	ctx := context.Background()
	c := plugin.InProcess(t, newPlugin())
	if ds, err := c.Configure(ctx, plugin.ConfigureOptions{Config: json.RawMessage(cfgJSON(url))}); err != nil || len(ds) > 0 {
		t.Fatalf("configure: %v %+v", err, ds)
	}
	st := c.Retrieval()
	name := fmt.Sprintf("brute-%d", time.Now().UnixNano())
	t.Cleanup(func() { st.DeleteCollection(context.WithoutCancel(ctx), name) })
	const n, dims = 600, 16
	if _, err := st.CreateCollection(ctx, name, dims); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	docs := make([]retrieval.Document, n)
	for i := range docs {
		v := make([]float32, dims)
		for j := range v {
			v[j] = float32(r.NormFloat64())
		}
		docs[i] = retrieval.Document{ID: fmt.Sprintf("d%04d", i), Vector: v, Metadata: map[string]any{"i": i, "odd": i%2 == 1}}
	}
	if _, err := st.Upsert(ctx, name, docs); err != nil {
		t.Fatal(err)
	}
	brute := func(q []float32, filters []retrieval.Filter) []string {
		type sc struct {
			id  string
			sim float64
		}
		var all []sc
		for _, d := range docs {
			if ok, _ := retrieval.MatchFilters(d.Metadata, filters); ok {
				all = append(all, sc{d.ID, cosine(q, d.Vector)})
			}
		}
		slices.SortFunc(all, func(a, b sc) int {
			if a.sim > b.sim {
				return -1
			}
			return 1
		})
		var out []string
		for _, s := range all[:10] {
			out = append(out, s.id)
		}
		return out
	}
	var found int
	for qi := range 20 {
		q := docs[r.IntN(n)].Vector
		odd := []retrieval.Filter{{Field: "odd", Op: retrieval.OpEq, Value: true}}
		ms, err := st.Query(ctx, &retrieval.QueryRequest{Collection: name, Vector: q, TopK: 10, Filters: odd})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, m := range ms {
			got = append(got, m.Document.ID)
		}
		if want := brute(q, odd); !slices.Equal(got, want) {
			t.Fatalf("query %d filtered: %v, brute force %v", qi, got, want)
		}
		ms, err = st.Query(ctx, &retrieval.QueryRequest{Collection: name, Vector: q, TopK: 10})
		if err != nil {
			t.Fatal(err)
		}
		want := brute(q, nil)
		for _, m := range ms {
			if slices.Contains(want, m.Document.ID) {
				found++
			}
		}
	}
	if recall := float64(found) / 200; recall < 0.9 {
		t.Fatalf("unfiltered (HNSW) recall@10 = %.2f, below 0.9", recall)
	}
	// top_k beyond hnsw_ef_search (100) still returns top_k matches.
	ms, err := st.Query(ctx, &retrieval.QueryRequest{Collection: name, Vector: docs[0].Vector, TopK: 250})
	if err != nil || len(ms) != 250 {
		t.Fatalf("TopK 250 returned %d matches (%v)", len(ms), err)
	}
}

func cosine(a, b []float32) float64 {
	var d, na, nb float64
	for i := range a {
		d += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	return d / (math.Sqrt(na) * math.Sqrt(nb))
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	p := newPlugin()
	if err := p.ConfigSchema().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ raw, path string }{
		{`{}`, "dsn"},
		{`{"dsn":"postgres://x@h/db","hnsw_ef_search":0}`, "hnsw_ef_search"},
		{`{"dsn":"postgres://x@h/db","max_connections":-1}`, "max_connections"},
	} {
		ds := p.ValidateConfig(context.Background(), json.RawMessage(tc.raw))
		if len(ds) != 1 || ds[0].Path[0] != tc.path {
			t.Errorf("%s: %+v, want one diagnostic at %s", tc.raw, ds, tc.path)
		}
	}
}
