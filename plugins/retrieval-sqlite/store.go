package main

import (
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"sync"

	"github.com/nemoclave/nemoclave/internal/sqlitedb"
	"github.com/nemoclave/nemoclave/sdk/embeddings"
	"github.com/nemoclave/nemoclave/sdk/retrieval"
	"github.com/nemoclave/nemoclave/sdk/status"
)

// schemaSQL is idempotent. documents.vector holds the vector as given
// (little-endian float32), so IncludeVectors returns exactly what was
// upserted; the in-memory copy is normalised. The FTS5 index is external
// content kept in sync by triggers.
const schemaSQL = `
CREATE TABLE IF NOT EXISTS collections (
	name TEXT PRIMARY KEY,
	dims INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS documents (
	rowid      INTEGER PRIMARY KEY,
	collection TEXT NOT NULL,
	id         TEXT NOT NULL,
	text       TEXT NOT NULL DEFAULT '',
	metadata   TEXT NOT NULL DEFAULT '{}',
	vector     BLOB,
	UNIQUE (collection, id)
);
CREATE VIRTUAL TABLE IF NOT EXISTS documents_fts USING fts5(
	text, content='documents', content_rowid='rowid', tokenize='porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS documents_ai AFTER INSERT ON documents BEGIN
	INSERT INTO documents_fts(rowid, text) VALUES (new.rowid, new.text);
END;
CREATE TRIGGER IF NOT EXISTS documents_ad AFTER DELETE ON documents BEGIN
	INSERT INTO documents_fts(documents_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
END;
CREATE TRIGGER IF NOT EXISTS documents_au AFTER UPDATE ON documents BEGIN
	INSERT INTO documents_fts(documents_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
	INSERT INTO documents_fts(rowid, text) VALUES (new.rowid, new.text);
END;
`

const (
	defaultTopK = 10
	maxTopK     = 1000
	embedBatch  = 128
)

// collection is one collection's in-memory state. writeMu serialises
// writers so the database and the vectors change in the same order; mu
// guards the vectors and the index pointer for readers.
//
// Lock order: store.mu, then writeMu, then mu; never store.mu while
// holding writeMu (a deleted collection is marked instead).
type collection struct {
	name    string
	writeMu sync.Mutex
	deleted bool // set by DeleteCollection under writeMu

	mu   sync.RWMutex
	dims int
	vec  *vectors
	ann  *hnsw // nil below the threshold or while it builds
	// building is the vectors an index build is running over, so one
	// build runs at a time; a compaction replaces vec and clears it.
	building *vectors
}

type store struct {
	db        *sql.DB
	emb       embeddings.Embedder
	cfg       config
	done      chan struct{} // closed by Close; stops index builds
	closeOnce sync.Once

	mu   sync.RWMutex
	cols map[string]*collection
}

func openStore(ctx context.Context, path string, emb embeddings.Embedder, cfg config) (*store, error) {
	db, err := sqlitedb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("retrieval database: %w (the plugin may only write under its state dir)", err)
	}
	if _, err := db.ExecContext(ctx, schemaSQL); err != nil {
		db.Close()
		return nil, fmt.Errorf("create the retrieval schema in %s: %w (is the file a nemoclave retrieval database?)", path, err)
	}
	s := &store{db: db, emb: emb, cfg: cfg, done: make(chan struct{}), cols: map[string]*collection{}}
	if err := s.load(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func (s *store) Close() error {
	s.closeOnce.Do(func() { close(s.done) })
	return s.db.Close()
}

// load reads every collection's vectors into memory.
func (s *store) load(ctx context.Context) error {
	rows, err := s.db.QueryContext(ctx, `SELECT name, dims FROM collections`)
	if err != nil {
		return fmt.Errorf("load collections: %w", err)
	}
	for rows.Next() {
		c := &collection{}
		if err := rows.Scan(&c.name, &c.dims); err != nil {
			rows.Close()
			return fmt.Errorf("load collections: %w", err)
		}
		c.vec = newVectors(c.dims)
		s.cols[c.name] = c
	}
	rows.Close()
	for _, c := range s.cols {
		rows, err := s.db.QueryContext(ctx, `SELECT rowid, id, metadata, vector FROM documents WHERE collection = ? AND vector IS NOT NULL ORDER BY rowid`, c.name)
		if err != nil {
			return fmt.Errorf("load collection %s: %w", c.name, err)
		}
		for rows.Next() {
			var rowid int64
			var id, meta string
			var blob []byte
			if err := rows.Scan(&rowid, &id, &meta, &blob); err != nil {
				rows.Close()
				return fmt.Errorf("load collection %s: %w", c.name, err)
			}
			md, err := decodeMeta(meta)
			if err != nil {
				rows.Close()
				return fmt.Errorf("collection %s document %s: %w", c.name, id, err)
			}
			c.vec.put(id, rowid, unitOrZero(decodeVector(blob), c.dims), md)
		}
		if err := rows.Err(); err != nil {
			rows.Close()
			return fmt.Errorf("load collection %s: %w", c.name, err)
		}
		rows.Close()
		s.maybeIndex(c)
	}
	return nil
}

func (s *store) get(name string) (*collection, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.cols[name]
	if !ok {
		return nil, status.Errorf(status.NotFound, "collection %q does not exist; create it first", name)
	}
	return c, nil
}

func (s *store) ListCollections(ctx context.Context) ([]retrieval.Collection, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT c.name, c.dims, (SELECT count(*) FROM documents d WHERE d.collection = c.name) FROM collections c ORDER BY c.name`)
	if err != nil {
		return nil, fmt.Errorf("list collections: %w", err)
	}
	defer rows.Close()
	var out []retrieval.Collection
	for rows.Next() {
		var c retrieval.Collection
		if err := rows.Scan(&c.Name, &c.Dimensions, &c.Count); err != nil {
			return nil, fmt.Errorf("list collections: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

func (s *store) CreateCollection(ctx context.Context, name string, dims int) (retrieval.Collection, error) {
	if name == "" {
		return retrieval.Collection{}, status.Errorf(status.InvalidArgument, "collection name is empty")
	}
	if dims < 0 {
		return retrieval.Collection{}, status.Errorf(status.InvalidArgument, "dimensions must be 0 (let the store decide) or positive, got %d", dims)
	}
	if dims == 0 && s.emb != nil {
		d, err := s.emb.Dimensions(ctx, "")
		if err != nil {
			return retrieval.Collection{}, fmt.Errorf("ask the wired embeddings plugin for its dimensions: %w", err)
		}
		dims = d
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.cols[name]; ok {
		c.writeMu.Lock()
		defer c.writeMu.Unlock()
		c.mu.RLock()
		have := c.dims
		c.mu.RUnlock()
		switch {
		case dims == 0 || dims == have:
		case have == 0:
			if err := s.setDims(ctx, c, dims); err != nil {
				return retrieval.Collection{}, err
			}
		default:
			return retrieval.Collection{}, status.Errorf(status.InvalidArgument, "collection %q exists with %d dimensions, not %d; use another name or delete it first", name, have, dims)
		}
		return s.describe(ctx, c)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO collections(name, dims) VALUES (?, ?)`, name, dims); err != nil {
		return retrieval.Collection{}, fmt.Errorf("create collection %s: %w", name, err)
	}
	s.cols[name] = &collection{name: name, dims: dims, vec: newVectors(dims)}
	return retrieval.Collection{Name: name, Dimensions: dims}, nil
}

func (s *store) setDims(ctx context.Context, c *collection, dims int) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE collections SET dims = ? WHERE name = ?`, dims, c.name); err != nil {
		return fmt.Errorf("set dimensions of %s: %w", c.name, err)
	}
	c.mu.Lock()
	c.dims, c.vec.dims = dims, dims
	c.mu.Unlock()
	return nil
}

func (s *store) describe(ctx context.Context, c *collection) (retrieval.Collection, error) {
	out := retrieval.Collection{Name: c.name}
	c.mu.RLock()
	out.Dimensions = c.dims
	c.mu.RUnlock()
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM documents WHERE collection = ?`, c.name).Scan(&out.Count)
	if err != nil {
		return out, fmt.Errorf("count documents of %s: %w", c.name, err)
	}
	return out, nil
}

func (s *store) DeleteCollection(ctx context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.cols[name]
	if !ok {
		return status.Errorf(status.NotFound, "collection %q does not exist", name)
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("delete collection %s: %w", name, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM documents WHERE collection = ?`, name); err != nil {
		return fmt.Errorf("delete collection %s: %w", name, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM collections WHERE name = ?`, name); err != nil {
		return fmt.Errorf("delete collection %s: %w", name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("delete collection %s: %w", name, err)
	}
	delete(s.cols, name)
	c.deleted = true
	return nil
}

func encodeVector(v []float32) []byte {
	if v == nil {
		return nil
	}
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func decodeVector(b []byte) []float32 {
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

// unitOrZero normalises v; the zero vector stays zero (similar to nothing).
func unitOrZero(v []float32, dims int) []float32 {
	if u := unit(v); u != nil {
		return u
	}
	return make([]float32, dims)
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

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}
