package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"testing"

	"github.com/nemoclave/nemoclave/sdk/memory"
	"github.com/nemoclave/nemoclave/sdk/plugin"
)

// refKeyword is full-text recall as the database itself answers it: the
// FTS5 match joined with each hit's row for the scope (the form recall
// used before the in-memory owners), best BM25 first, older first on ties.
func refKeyword(t *testing.T, s *store, scope memory.Scope, q string, k int) []scored {
	t.Helper()
	rows, err := s.db.Query(`SELECT m.rowid, bm25(memories_fts) FROM memories_fts
		JOIN memories m ON m.rowid = memories_fts.rowid
		WHERE memories_fts MATCH ? AND m.agent = ? AND m.user = ? AND (m.session = '' OR m.session = ?)
		ORDER BY bm25(memories_fts), m.rowid LIMIT ?`, ftsQuery(q), scope.Agent, scope.User, scope.Session, k)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []scored
	for rows.Next() {
		var c scored
		if err := rows.Scan(&c.rowid, &c.score); err != nil {
			t.Fatal(err)
		}
		c.score = -c.score
		out = append(out, c)
	}
	return out
}

// refVector is the vector top-k by a float64 brute force over the vectors
// stored in SQLite for the memories scope sees.
func refVector(t *testing.T, s *store, scope memory.Scope, q []float32, k int) []scored {
	t.Helper()
	rows, err := s.db.Query(`SELECT rowid, vector FROM memories WHERE agent = ? AND user = ? AND (session = '' OR session = ?) AND vector IS NOT NULL`,
		scope.Agent, scope.User, scope.Session)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []scored
	for rows.Next() {
		var c scored
		var blob []byte
		if err := rows.Scan(&c.rowid, &blob); err != nil {
			t.Fatal(err)
		}
		for i, x := range decodeVector(blob) {
			c.score += float64(x) * float64(q[i])
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].score > out[j].score })
	return out[:min(k, len(out))]
}

// TestRecallMatchesReference: the in-memory index answers what the
// database says. Keyword hits equal the FTS5 query joined with the rows,
// vector hits equal a float64 brute force over the stored vectors, and a
// store whose index followed writes and forgets recalls exactly what a
// store freshly opened on the same file recalls, with and without an
// embedder.
func TestRecallMatchesReference(t *testing.T) {
	ctx := context.Background()
	e := launch(t, "embeddings-hash")
	if ds, err := e.Configure(ctx, plugin.ConfigureOptions{Config: json.RawMessage(`{"dimensions":64}`)}); err != nil || len(ds) > 0 {
		t.Fatalf("configure embeddings-hash: %v %+v", err, ds)
	}
	path := filepath.Join(t.TempDir(), "memory.db")
	s, err := openStore(ctx, path, e.Embeddings(), defaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	scopes := []memory.Scope{
		{Agent: "a", User: "u1", Session: "s1"}, {Agent: "a", User: "u1", Session: "s2"}, {Agent: "a", User: "u1"},
		{Agent: "a", User: "u2", Session: "s1"}, {Agent: "b", User: "u1", Session: "s1"},
	}
	// A small vocabulary so queries match many memories of every scope and
	// BM25 ties occur; a unique word per memory keeps vectors distinct.
	r := rand.New(rand.NewPCG(7, 7))
	vocab := vocabulary()[:200]
	var stored []memory.Memory
	for i := range 400 {
		m, err := s.Remember(ctx, scopes[r.IntN(len(scopes))], fmt.Sprintf("%s uniq%d", syntheticText(r, vocab, 3+r.IntN(8)), i), nil)
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, m)
	}
	for _, i := range r.Perm(len(stored))[:60] {
		if _, err := s.Forget(ctx, stored[i].Scope, []string{stored[i].ID}, false); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Forget(ctx, scopes[4], nil, true); err != nil {
		t.Fatal(err)
	}
	fresh, err := openStore(ctx, path, e.Embeddings(), defaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	noEmb, err := openStore(ctx, path, nil, defaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer noEmb.Close()

	const k = 40
	for qi := range 30 {
		q := syntheticText(r, vocab, 1+r.IntN(4))
		qv, _, err := s.embed(ctx, []string{q})
		if err != nil {
			t.Fatal(err)
		}
		for _, sc := range append(scopes, memory.Scope{Agent: "a", User: "nobody", Session: "s1"}) {
			want := refKeyword(t, s, sc, q, k)
			for name, st := range map[string]*store{"live": s, "fresh": fresh, "no embedder": noEmb} {
				got, err := st.keywordSearch(ctx, sc, q, k)
				if err != nil {
					t.Fatal(err)
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("query %d %q scope %+v, %s store: keyword hits\n%v\nwant (SQL join)\n%v", qi, q, sc, name, got, want)
				}
			}
			if qi == 0 && sc == scopes[0] && len(want) < 10 {
				t.Fatalf("query %q matched %d memories; the data set should make queries match many", q, len(want))
			}

			wantV := refVector(t, s, sc, qv[0], k)
			gotV := s.vecs.search(sc, qv[0], k, dot, true)
			sort.Slice(gotV, func(i, j int) bool { return gotV[i].score > gotV[j].score })
			// The int8 first pass finds exactly the float32 scan's top k.
			fullV := s.vecs.search(sc, qv[0], k, dot, false)
			sort.Slice(fullV, func(i, j int) bool { return fullV[i].score > fullV[j].score })
			if fmt.Sprint(gotV) != fmt.Sprint(fullV) {
				t.Fatalf("query %q scope %+v: vector hits with the int8 first pass\n%v\ndiffer from the full float32 scan\n%v", q, sc, gotV, fullV)
			}
			if len(gotV) != len(wantV) {
				t.Fatalf("query %q scope %+v: %d vector hits, brute force %d", q, sc, len(gotV), len(wantV))
			}
			in := map[int64]bool{}
			for _, c := range gotV {
				in[c.rowid] = true
			}
			for i, c := range wantV {
				if math.Abs(gotV[i].score-c.score) > 1e-5 {
					t.Fatalf("query %q scope %+v: vector hit %d scores %v, brute force %v", q, sc, i, gotV[i].score, c.score)
				}
				// Only a near-tie at the cut may be swapped for another.
				if !in[c.rowid] && c.score > wantV[len(wantV)-1].score+1e-5 {
					t.Fatalf("query %q scope %+v: brute-force hit %d (rowid %d, %v) missing", q, sc, i, c.rowid, c.score)
				}
			}

			a, err := s.Recall(ctx, sc, q, 10, 0)
			if err != nil {
				t.Fatal(err)
			}
			b, err := fresh.Recall(ctx, sc, q, 10, 0)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(a) != fmt.Sprint(b) {
				t.Fatalf("query %q scope %+v: recall of the live store\n%v\ndiffers from a freshly opened one\n%v", q, sc, a, b)
			}
		}
	}
}
