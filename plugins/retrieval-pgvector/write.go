package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/nemoclave/nemoclave/sdk/embeddings"
	"github.com/nemoclave/nemoclave/sdk/retrieval"
	"github.com/nemoclave/nemoclave/sdk/status"
)

const embedBatch = 128

// Upsert writes docs in one transaction. A document without a vector is
// embedded when an embedder is wired; without one it is stored for
// full-text search only.
func (s *store) Upsert(ctx context.Context, name string, docs []retrieval.Document) (int, error) {
	dims, err := s.dims(ctx, name)
	if err != nil {
		return 0, err
	}
	if len(docs) == 0 {
		return 0, nil
	}
	vecs := make([][]float32, len(docs))
	var toEmbed []int
	for i, d := range docs {
		switch {
		case d.ID == "":
			return 0, status.Errorf(status.InvalidArgument, "document %d has no ID; every document needs one", i)
		case len(d.Vector) > 0:
			vecs[i] = d.Vector
		case d.Text == "":
			return 0, status.Errorf(status.InvalidArgument, "document %q has neither text nor vector", d.ID)
		case s.emb != nil:
			toEmbed = append(toEmbed, i)
		}
	}
	if err := s.embedInto(ctx, docs, toEmbed, vecs); err != nil {
		return 0, err
	}
	newDims := dims
	for i, v := range vecs {
		if v == nil {
			continue
		}
		if newDims == 0 {
			newDims = len(v)
		}
		if len(v) != newDims {
			return 0, status.Errorf(status.InvalidArgument, "document %q has a %d-dimension vector; collection %q holds %d dimensions", docs[i].ID, len(v), name, newDims)
		}
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("upsert into %s: %w", name, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if dims == 0 && newDims != 0 {
		// Fix the size on the first vector; the row lock makes a racing
		// upsert of another size wait and then fail its check below.
		var have int
		if err := tx.QueryRow(ctx, `UPDATE nemoclave_collections SET dims = CASE WHEN dims = 0 THEN $2 ELSE dims END WHERE name = $1 RETURNING dims`, name, newDims).Scan(&have); err != nil {
			return 0, fmt.Errorf("upsert into %s: %w", name, err)
		}
		if have != newDims {
			return 0, status.Errorf(status.InvalidArgument, "collection %q holds %d dimensions, not %d", name, have, newDims)
		}
		if err := s.ensureIndex(ctx, tx, name, newDims); err != nil {
			return 0, err
		}
	}
	batch := &pgx.Batch{}
	for i, d := range docs {
		md := d.Metadata
		if md == nil {
			md = map[string]any{}
		}
		meta, err := json.Marshal(md)
		if err != nil {
			return 0, status.Errorf(status.InvalidArgument, "document %q: metadata is not JSON-compatible: %v", d.ID, err)
		}
		var vec *string
		if vecs[i] != nil {
			lit := vectorLiteral(vecs[i])
			vec = &lit
		}
		batch.Queue(`INSERT INTO nemoclave_documents (collection, id, text, metadata, embedding) VALUES ($1, $2, $3, $4::jsonb, $5::vector)
			ON CONFLICT (collection, id) DO UPDATE SET text = excluded.text, metadata = excluded.metadata, embedding = excluded.embedding`,
			name, d.ID, d.Text, string(meta), vec)
	}
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return 0, fmt.Errorf("upsert into %s: %w", name, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("upsert into %s: %w", name, err)
	}
	return len(docs), nil
}

func (s *store) embedInto(ctx context.Context, docs []retrieval.Document, idx []int, vecs [][]float32) error {
	for lo := 0; lo < len(idx); lo += embedBatch {
		part := idx[lo:min(lo+embedBatch, len(idx))]
		texts := make([]string, len(part))
		for j, i := range part {
			texts[j] = docs[i].Text
		}
		resp, err := s.emb.Embed(ctx, &embeddings.EmbedRequest{Inputs: texts})
		if err != nil {
			return fmt.Errorf("embed documents with the wired embeddings plugin: %w", err)
		}
		if len(resp.Vectors) != len(part) {
			return status.Errorf(status.Internal, "embeddings plugin returned %d vectors for %d texts", len(resp.Vectors), len(part))
		}
		for j, i := range part {
			vecs[i] = resp.Vectors[j]
		}
	}
	return nil
}

// Delete removes the union of the documents named by ID and those whose
// metadata matches every filter (evaluated with MatchFilters).
func (s *store) Delete(ctx context.Context, req *retrieval.DeleteRequest) (int, error) {
	if len(req.IDs) == 0 && len(req.Filters) == 0 {
		return 0, status.Errorf(status.InvalidArgument, "delete needs IDs or filters; an empty request would empty the collection")
	}
	for _, f := range req.Filters {
		if err := f.Validate(); err != nil {
			return 0, err
		}
	}
	if _, err := s.dims(ctx, req.Collection); err != nil {
		return 0, err
	}
	ids := append([]string(nil), req.IDs...)
	if len(req.Filters) > 0 {
		rows, err := s.pool.Query(ctx, `SELECT id, metadata::text FROM nemoclave_documents WHERE collection = $1`, req.Collection)
		if err != nil {
			return 0, fmt.Errorf("delete from %s: %w", req.Collection, err)
		}
		for rows.Next() {
			var id, meta string
			if err := rows.Scan(&id, &meta); err != nil {
				rows.Close()
				return 0, fmt.Errorf("delete from %s: %w", req.Collection, err)
			}
			md, err := decodeMeta(meta)
			if err != nil {
				rows.Close()
				return 0, err
			}
			if ok, _ := retrieval.MatchFilters(md, req.Filters); ok {
				ids = append(ids, id)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return 0, fmt.Errorf("delete from %s: %w", req.Collection, err)
		}
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM nemoclave_documents WHERE collection = $1 AND id = ANY($2)`, req.Collection, ids)
	if err != nil {
		return 0, fmt.Errorf("delete from %s: %w", req.Collection, err)
	}
	return int(tag.RowsAffected()), nil
}

func decodeMeta(s string) (map[string]any, error) {
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("corrupt metadata: %w", err)
	}
	if m == nil {
		m = map[string]any{}
	}
	return m, nil
}
