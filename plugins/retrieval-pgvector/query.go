package main

import (
	"context"
	"fmt"
	"strings"
	"unicode"

	"github.com/jackc/pgx/v5"

	"github.com/nemoclave/nemoclave/sdk/embeddings"
	"github.com/nemoclave/nemoclave/sdk/retrieval"
	"github.com/nemoclave/nemoclave/sdk/status"
)

const (
	defaultTopK = 10
	maxTopK     = 1000
)

// Query answers by vector (given, or embedded from Text by the wired
// embedder) or, with no embedder, by full-text rank.
func (s *store) Query(ctx context.Context, req *retrieval.QueryRequest) ([]retrieval.Match, error) {
	for _, f := range req.Filters {
		if err := f.Validate(); err != nil {
			return nil, err
		}
	}
	dims, err := s.dims(ctx, req.Collection)
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
		return s.keywordQuery(ctx, req, k)
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
	if dims == 0 {
		return nil, nil // no vectors yet
	}
	if len(q) != dims {
		return nil, status.Errorf(status.InvalidArgument, "query vector has %d dimensions; collection %q holds %d", len(q), req.Collection, dims)
	}
	if isZero(q) {
		return nil, status.Errorf(status.InvalidArgument, "query vector is zero (or not finite); it is similar to nothing")
	}
	return s.vectorQuery(ctx, req, q, dims, k)
}

// vectorQuery repeats the index's expression and predicate so unfiltered
// queries use the collection's HNSW index. Filtered queries run in a
// transaction with index scans off, so PostgreSQL sorts exactly, and
// fetch a growing window until k documents pass MatchFilters.
func (s *store) vectorQuery(ctx context.Context, req *retrieval.QueryRequest, q []float32, dims, k int) ([]retrieval.Match, error) {
	expr := fmt.Sprintf("(embedding::vector(%d))", dims)
	vecCol := "NULL::text"
	if req.IncludeVectors {
		vecCol = "embedding::text"
	}
	sql := fmt.Sprintf(`SELECT id, text, metadata::text, %s, 1 - (%s <=> $1::vector(%d)) FROM nemoclave_documents
		WHERE collection = %s AND embedding IS NOT NULL ORDER BY %s <=> $1::vector(%d) LIMIT $2`,
		vecCol, expr, dims, quoteLiteral(req.Collection), expr, dims)
	lit := vectorLiteral(q)
	if len(req.Filters) == 0 && k <= s.cfg.EfSearch {
		rows, err := s.pool.Query(ctx, sql, lit, k)
		if err != nil {
			return nil, fmt.Errorf("vector query: %w", err)
		}
		out, _, err := collect(rows, req, k)
		return out, err
	}
	if len(req.Filters) == 0 {
		// pgvector's HNSW scan returns at most ef_search rows: widen the
		// beam for this query so top_k beyond it is honoured.
		tx, err := s.pool.Begin(ctx)
		if err != nil {
			return nil, fmt.Errorf("vector query: %w", err)
		}
		defer tx.Rollback(context.WithoutCancel(ctx))
		if _, err := tx.Exec(ctx, fmt.Sprintf(`SET LOCAL hnsw.ef_search = %d`, k)); err != nil {
			return nil, fmt.Errorf("vector query: %w", err)
		}
		rows, err := tx.Query(ctx, sql, lit, k)
		if err != nil {
			return nil, fmt.Errorf("vector query: %w", err)
		}
		out, _, err := collect(rows, req, k)
		return out, err
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("vector query: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `SET LOCAL enable_indexscan = off`); err != nil {
		return nil, fmt.Errorf("vector query: %w", err)
	}
	for window := max(100, 10*k); ; window *= 4 {
		rows, err := tx.Query(ctx, sql, lit, window)
		if err != nil {
			return nil, fmt.Errorf("vector query: %w", err)
		}
		out, seen, err := collect(rows, req, k)
		if err != nil || len(out) == k || seen < window {
			return out, err
		}
	}
}

// collect reads matches (id, text, metadata, vector text, score) that pass
// the filters, up to k, and reports how many rows it read.
func collect(rows pgx.Rows, req *retrieval.QueryRequest, k int) ([]retrieval.Match, int, error) {
	defer rows.Close()
	var out []retrieval.Match
	seen := 0
	for rows.Next() {
		seen++
		if len(out) == k {
			continue
		}
		var d retrieval.Document
		var meta string
		var vec *string
		var score float64
		if err := rows.Scan(&d.ID, &d.Text, &meta, &vec, &score); err != nil {
			return nil, 0, fmt.Errorf("read matches: %w", err)
		}
		md, err := decodeMeta(meta)
		if err != nil {
			return nil, 0, err
		}
		if ok, _ := retrieval.MatchFilters(md, req.Filters); !ok {
			continue
		}
		d.Metadata = md
		if vec != nil {
			if d.Vector, err = parseVector(*vec); err != nil {
				return nil, 0, err
			}
		}
		out = append(out, retrieval.Match{Document: d, Score: score})
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("read matches: %w", err)
	}
	return out, seen, nil
}

// tsQuery ORs the words of free text for to_tsquery; only letters and
// digits survive, so user text is never tsquery syntax.
func tsQuery(text string) string {
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsNumber(r)
	})
	seen := map[string]bool{}
	var terms []string
	for _, w := range words {
		if !seen[w] {
			seen[w] = true
			terms = append(terms, w)
		}
	}
	return strings.Join(terms, " | ")
}

// keywordQuery ranks by ts_rank_cd, filters with MatchFilters, and scores
// each match relative to the best, so scores lie in (0, 1].
func (s *store) keywordQuery(ctx context.Context, req *retrieval.QueryRequest, k int) ([]retrieval.Match, error) {
	tq := tsQuery(req.Text)
	if tq == "" {
		return nil, nil
	}
	vecCol := "NULL::text"
	if req.IncludeVectors {
		vecCol = "embedding::text"
	}
	rows, err := s.pool.Query(ctx, `SELECT id, text, metadata::text, `+vecCol+`, ts_rank_cd(tsv, q)::float8 AS r
		FROM nemoclave_documents, to_tsquery('english', $2) q
		WHERE collection = $1 AND tsv @@ q ORDER BY r DESC, seq`, req.Collection, tq)
	if err != nil {
		return nil, fmt.Errorf("full-text query: %w", err)
	}
	out, _, err := collect(rows, req, k)
	if err != nil || len(out) == 0 {
		return out, err
	}
	best := out[0].Score
	for i := range out {
		if best > 0 {
			out[i].Score /= best
		} else {
			out[i].Score = 1
		}
	}
	return out, nil
}
