package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nemoclave/nemoclave/sdk/embeddings"
	"github.com/nemoclave/nemoclave/sdk/retrieval"
	"github.com/nemoclave/nemoclave/sdk/status"
)

// Upsert writes docs in one transaction, then mirrors them in memory. A
// document without a vector is embedded when an embedder is wired;
// without one it is stored for full-text search only.
func (s *store) Upsert(ctx context.Context, name string, docs []retrieval.Document) (int, error) {
	c, err := s.get(name)
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
	metas := make([]string, len(docs))
	for i, d := range docs {
		md := d.Metadata
		if md == nil {
			md = map[string]any{}
		}
		b, err := json.Marshal(md)
		if err != nil {
			return 0, status.Errorf(status.InvalidArgument, "document %q: metadata is not JSON-compatible: %v", d.ID, err)
		}
		metas[i] = string(b)
	}

	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if c.deleted { // deleted while we embedded
		return 0, status.Errorf(status.NotFound, "collection %q was deleted", name)
	}
	c.mu.RLock()
	dims := c.dims
	c.mu.RUnlock()
	for i, v := range vecs {
		if v == nil {
			continue
		}
		if dims == 0 {
			dims = len(v)
		}
		if len(v) != dims {
			return 0, status.Errorf(status.InvalidArgument, "document %q has a %d-dimension vector; collection %q holds %d dimensions", docs[i].ID, len(v), name, dims)
		}
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("upsert into %s: %w", name, err)
	}
	defer tx.Rollback()
	if c.dims == 0 && dims != 0 {
		if _, err := tx.ExecContext(ctx, `UPDATE collections SET dims = ? WHERE name = ?`, dims, name); err != nil {
			return 0, fmt.Errorf("upsert into %s: %w", name, err)
		}
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO documents(collection, id, text, metadata, vector) VALUES (?,?,?,?,?)
		ON CONFLICT(collection, id) DO UPDATE SET text = excluded.text, metadata = excluded.metadata, vector = excluded.vector
		RETURNING rowid`)
	if err != nil {
		return 0, fmt.Errorf("upsert into %s: %w", name, err)
	}
	defer stmt.Close()
	rowids := make([]int64, len(docs))
	for i, d := range docs {
		if err := stmt.QueryRowContext(ctx, name, d.ID, d.Text, metas[i], encodeVector(vecs[i])).Scan(&rowids[i]); err != nil {
			return 0, fmt.Errorf("upsert %q into %s: %w", d.ID, name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("upsert into %s: %w", name, err)
	}

	c.mu.Lock()
	if c.dims == 0 {
		c.dims, c.vec.dims = dims, dims
	}
	first := len(c.vec.ids)
	for i, d := range docs {
		if vecs[i] == nil {
			c.vec.kill(d.ID)
			continue
		}
		md, _ := decodeMeta(metas[i]) // a fresh copy the caller cannot mutate
		c.vec.put(d.ID, rowids[i], unitOrZero(vecs[i], dims), md)
	}
	ann, data, last := c.ann, c.vec.data, len(c.vec.ids)
	c.mu.Unlock()
	// The graph takes new slots outside c.mu so queries are not held up;
	// until they are in, queries scan them exactly (see query.go).
	if ann != nil {
		for n := first; n < last; n++ {
			ann.add(int32(n), data)
		}
	}
	s.maybeCompact(c)
	s.maybeIndex(c)
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
// metadata matches every filter.
func (s *store) Delete(ctx context.Context, req *retrieval.DeleteRequest) (int, error) {
	if len(req.IDs) == 0 && len(req.Filters) == 0 {
		return 0, status.Errorf(status.InvalidArgument, "delete needs IDs or filters; an empty request would empty the collection")
	}
	for _, f := range req.Filters {
		if err := f.Validate(); err != nil {
			return 0, err
		}
	}
	c, err := s.get(req.Collection)
	if err != nil {
		return 0, err
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if c.deleted {
		return 0, status.Errorf(status.NotFound, "collection %q was deleted", req.Collection)
	}
	doomed := map[string]bool{}
	for _, id := range req.IDs {
		doomed[id] = true
	}
	if len(req.Filters) > 0 {
		rows, err := s.db.QueryContext(ctx, `SELECT id, metadata FROM documents WHERE collection = ?`, req.Collection)
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
				doomed[id] = true
			}
		}
		rows.Close()
	}
	ids := make([]any, 0, len(doomed))
	for id := range doomed {
		ids = append(ids, id)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("delete from %s: %w", req.Collection, err)
	}
	defer tx.Rollback()
	var gone []string
	const chunk = 500
	for lo := 0; lo < len(ids); lo += chunk {
		part := ids[lo:min(lo+chunk, len(ids))]
		rows, err := tx.QueryContext(ctx, `DELETE FROM documents WHERE collection = ? AND id IN (`+placeholders(len(part))+`) RETURNING id`,
			append([]any{req.Collection}, part...)...)
		if err != nil {
			return 0, fmt.Errorf("delete from %s: %w", req.Collection, err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return 0, fmt.Errorf("delete from %s: %w", req.Collection, err)
			}
			gone = append(gone, id)
		}
		if err := rows.Close(); err != nil {
			return 0, fmt.Errorf("delete from %s: %w", req.Collection, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("delete from %s: %w", req.Collection, err)
	}
	c.mu.Lock()
	for _, id := range gone {
		c.vec.kill(id)
	}
	c.mu.Unlock()
	s.maybeCompact(c)
	return len(gone), nil
}

// maybeCompact drops dead slots once they outnumber live ones (the
// caller holds c.writeMu). Slot numbers change, so the graph is rebuilt.
func (s *store) maybeCompact(c *collection) {
	c.mu.Lock()
	if c.vec.dead < 1024 || c.vec.dead < c.vec.live() {
		c.mu.Unlock()
		return
	}
	c.vec = c.vec.compacted()
	c.ann, c.building = nil, nil // a build of the old slots sees it is stale and stops
	c.mu.Unlock()
	s.maybeIndex(c)
}

// maybeIndex starts building the approximate index in the background
// when the collection is past the threshold and has none. Queries stay
// exact until the build has caught up with every slot.
func (s *store) maybeIndex(c *collection) {
	c.mu.Lock()
	want := s.cfg.HNSWThreshold > 0 && c.vec.live() >= s.cfg.HNSWThreshold && c.ann == nil && c.building == nil && c.dims > 0
	vec := c.vec
	if want {
		c.building = vec
	}
	c.mu.Unlock()
	if want {
		go s.buildIndex(c, vec)
	}
}

func (s *store) buildIndex(c *collection, vec *vectors) {
	h := newHNSW(vec.dims, s.cfg.hnswParams())
	for {
		select {
		case <-s.done:
			return
		default:
		}
		c.writeMu.Lock()
		c.mu.RLock()
		stale := c.vec != vec // compacted meanwhile: that compaction starts its own build
		data, n := c.vec.data, len(c.vec.ids)
		c.mu.RUnlock()
		if stale {
			c.writeMu.Unlock()
			return
		}
		if h.len() == n {
			c.mu.Lock()
			c.ann, c.building = h, nil
			c.mu.Unlock()
			c.writeMu.Unlock()
			return
		}
		c.writeMu.Unlock()
		// Slots below n never change, so this snapshot is safe to read
		// while writers append.
		for i := h.len(); i < n; i++ {
			if i%1024 == 0 {
				select {
				case <-s.done:
					return
				default:
				}
			}
			h.add(int32(i), data)
		}
	}
}
