package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"unicode"

	"github.com/nemoclave/nemoclave/sdk/embeddings"
	"github.com/nemoclave/nemoclave/sdk/retrieval"
	"github.com/nemoclave/nemoclave/sdk/status"
)

// Query answers by vector (given, or embedded from Text by the wired
// embedder) or, with no embedder, by BM25 over the text.
func (s *store) Query(ctx context.Context, req *retrieval.QueryRequest) ([]retrieval.Match, error) {
	for _, f := range req.Filters {
		if err := f.Validate(); err != nil {
			return nil, err
		}
	}
	c, err := s.get(req.Collection)
	if err != nil {
		return nil, err
	}
	k := req.TopK
	if k <= 0 {
		k = defaultTopK
	}
	k = min(k, maxTopK)
	q := req.Vector
	switch {
	case len(q) > 0:
	case req.Text == "":
		return nil, status.Errorf(status.InvalidArgument, "query needs text or a vector")
	case s.emb == nil:
		return s.keywordQuery(ctx, c, req, k)
	default:
		resp, err := s.emb.Embed(ctx, &embeddings.EmbedRequest{Inputs: []string{req.Text}})
		if err != nil {
			return nil, fmt.Errorf("embed the query with the wired embeddings plugin: %w", err)
		}
		if len(resp.Vectors) != 1 {
			return nil, status.Errorf(status.Internal, "embeddings plugin returned %d vectors for one text", len(resp.Vectors))
		}
		q = resp.Vectors[0]
	}
	hits, found, err := c.search(q, k, req.Filters)
	if err != nil || len(hits) == 0 {
		return nil, err
	}
	return s.materialise(ctx, found, hits, req.IncludeVectors)
}

// found is what a search knows of a hit without asking the database.
type found struct {
	id    string
	rowid int64
	meta  map[string]any
}

// search runs the vector side: the HNSW graph for unfiltered queries once
// it is built, plus an exact scan of the slots added since; the exact scan
// of everything otherwise.
func (c *collection) search(q []float32, k int, filters []retrieval.Filter) ([]hit, []found, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.dims == 0 {
		return nil, nil, nil // no vectors yet
	}
	if len(q) != c.dims {
		return nil, nil, status.Errorf(status.InvalidArgument, "query vector has %d dimensions; collection %q holds %d", len(q), c.name, c.dims)
	}
	u := unit(q)
	if u == nil {
		return nil, nil, status.Errorf(status.InvalidArgument, "query vector is zero (or not finite); it is similar to nothing")
	}
	var hits []hit
	if c.ann != nil && len(filters) == 0 {
		v := c.vec
		hits = c.ann.search(u, k, func(n int32) bool { return v.ids[n] != "" })
		if tail := c.ann.len(); tail < len(v.ids) {
			var h topK
			for _, x := range hits {
				h.offer(k, x)
			}
			for _, x := range v.scan(u, k, tail, len(v.ids), nil) {
				h.offer(k, x)
			}
			hits = h.sorted()
		}
	} else {
		hits = c.vec.exact(u, k, filters)
	}
	fs := make([]found, len(hits))
	for i, h := range hits {
		fs[i] = found{id: c.vec.ids[h.slot], rowid: c.vec.rowids[h.slot], meta: c.vec.meta[h.slot]}
	}
	return hits, fs, nil
}

// materialise loads text (and the stored vector on request) for the hits.
// A document deleted between search and load is dropped.
func (s *store) materialise(ctx context.Context, fs []found, hits []hit, withVectors bool) ([]retrieval.Match, error) {
	args := make([]any, len(fs))
	for i, f := range fs {
		args[i] = f.rowid
	}
	cols := "rowid, text, NULL"
	if withVectors {
		cols = "rowid, text, vector"
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+cols+` FROM documents WHERE rowid IN (`+placeholders(len(args))+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("load matches: %w", err)
	}
	defer rows.Close()
	type loaded struct {
		text string
		vec  []byte
	}
	byRow := map[int64]loaded{}
	for rows.Next() {
		var r int64
		var l loaded
		if err := rows.Scan(&r, &l.text, &l.vec); err != nil {
			return nil, fmt.Errorf("load matches: %w", err)
		}
		byRow[r] = l
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load matches: %w", err)
	}
	out := make([]retrieval.Match, 0, len(fs))
	for i, f := range fs {
		l, ok := byRow[f.rowid]
		if !ok {
			continue
		}
		d := retrieval.Document{ID: f.id, Text: l.text, Metadata: f.meta}
		if withVectors && l.vec != nil {
			d.Vector = decodeVector(l.vec)
		}
		out = append(out, retrieval.Match{Document: d, Score: float64(hits[i].sim)})
	}
	return out, nil
}

// ftsQuery ORs the words of free text, each quoted so FTS5 operators in
// user text are never syntax.
func ftsQuery(text string) string {
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsNumber(r)
	})
	seen := map[string]bool{}
	var terms []string
	for _, w := range words {
		if !seen[w] {
			seen[w] = true
			terms = append(terms, `"`+w+`"`)
		}
	}
	return strings.Join(terms, " OR ")
}

// keywordQuery ranks by BM25, filters with MatchFilters, and scores each
// match relative to the best (so scores lie in (0, 1]).
func (s *store) keywordQuery(ctx context.Context, c *collection, req *retrieval.QueryRequest, k int) ([]retrieval.Match, error) {
	fq := ftsQuery(req.Text)
	if fq == "" {
		return nil, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT d.id, d.text, d.metadata, d.vector, bm25(documents_fts) FROM documents_fts
		JOIN documents d ON d.rowid = documents_fts.rowid
		WHERE documents_fts MATCH ? AND d.collection = ?
		ORDER BY bm25(documents_fts)`, fq, c.name)
	if err != nil {
		return nil, fmt.Errorf("full-text query: %w", err)
	}
	defer rows.Close()
	var out []retrieval.Match
	var best float64
	for rows.Next() && len(out) < k {
		var d retrieval.Document
		var meta string
		var vec []byte
		var bm float64
		if err := rows.Scan(&d.ID, &d.Text, &meta, &vec, &bm); err != nil {
			return nil, fmt.Errorf("full-text query: %w", err)
		}
		if d.Metadata, err = decodeMeta(meta); err != nil {
			return nil, err
		}
		if ok, _ := retrieval.MatchFilters(d.Metadata, req.Filters); !ok {
			continue
		}
		if req.IncludeVectors && vec != nil {
			d.Vector = decodeVector(vec)
		}
		if best == 0 {
			best = -bm
		}
		score := 1.0
		if best > 0 {
			score = -bm / best
		}
		out = append(out, retrieval.Match{Document: d, Score: score})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("full-text query: %w", err)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Score > out[j].Score })
	return out, nil
}
