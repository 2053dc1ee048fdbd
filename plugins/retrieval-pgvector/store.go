package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/nemoclave/nemoclave/sdk/embeddings"
	"github.com/nemoclave/nemoclave/sdk/retrieval"
	"github.com/nemoclave/nemoclave/sdk/status"
)

const migrateLock = 0x6e656d6f726574 // "nemoret"

// schemaSQL is idempotent. Documents of all collections share one table;
// the per-collection HNSW index is partial (see indexFor).
const schemaSQL = `
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE IF NOT EXISTS nemoclave_collections (
	name TEXT PRIMARY KEY,
	dims INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS nemoclave_documents (
	seq        BIGSERIAL PRIMARY KEY,
	collection TEXT NOT NULL REFERENCES nemoclave_collections (name) ON DELETE CASCADE,
	id         TEXT NOT NULL,
	text       TEXT NOT NULL DEFAULT '',
	metadata   JSONB NOT NULL DEFAULT '{}',
	embedding  vector,
	tsv        TSVECTOR GENERATED ALWAYS AS (to_tsvector('english', text)) STORED,
	UNIQUE (collection, id)
);
CREATE INDEX IF NOT EXISTS nemoclave_documents_tsv ON nemoclave_documents USING GIN (tsv);
`

type store struct {
	pool *pgxpool.Pool
	emb  embeddings.Embedder
	cfg  config
}

func openStore(ctx context.Context, cfg config, emb embeddings.Embedder) (*store, error) {
	pc, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, status.Errorf(status.InvalidArgument, "dsn: %v", err)
	}
	pc.MaxConns = int32(cfg.MaxConns)
	ef := cfg.EfSearch
	pc.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		_, err := c.Exec(ctx, "SET hnsw.ef_search = "+strconv.Itoa(ef))
		return err
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	s := &store{pool: pool, emb: emb, cfg: cfg}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

func (s *store) migrate(ctx context.Context) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w (check dsn, and that the plugin's egress policy allows the database host)", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrateLock); err != nil {
		return fmt.Errorf("lock the retrieval schema: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrateLock)
	if _, err := conn.Exec(ctx, schemaSQL); err != nil {
		return fmt.Errorf("create the retrieval schema: %w (retrieval-pgvector needs PostgreSQL with the pgvector extension installed, and a user allowed to CREATE EXTENSION vector or a database where it exists)", err)
	}
	return nil
}

func (s *store) Close() error { s.pool.Close(); return nil }

// quoteLiteral quotes a string for SQL text (standard_conforming_strings
// is on in every supported PostgreSQL). Only collection names go through
// it, for partial-index predicates, which cannot be parameters.
func quoteLiteral(v string) string { return "'" + strings.ReplaceAll(v, "'", "''") + "'" }

// indexFor names the collection's HNSW index: a hash, since collection
// names are free text and identifiers are limited to 63 bytes.
func indexFor(name string) string {
	h := sha256.Sum256([]byte(name))
	return "nemoclave_documents_hnsw_" + hex.EncodeToString(h[:8])
}

// ensureIndex creates the collection's partial HNSW index over embeddings
// cast to its dimensions. Query text repeats the same expression and
// predicate so the planner can use it.
func (s *store) ensureIndex(ctx context.Context, tx pgx.Tx, name string, dims int) error {
	if dims <= 0 || dims > 2000 { // pgvector indexes up to 2000 dimensions; larger ones are searched exactly
		return nil
	}
	_, err := tx.Exec(ctx, fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %s ON nemoclave_documents USING hnsw ((embedding::vector(%d)) vector_cosine_ops) WHERE collection = %s`,
		indexFor(name), dims, quoteLiteral(name)))
	if err != nil {
		return fmt.Errorf("create the HNSW index of %s: %w", name, err)
	}
	return nil
}

func (s *store) dims(ctx context.Context, name string) (int, error) {
	var d int
	err := s.pool.QueryRow(ctx, `SELECT dims FROM nemoclave_collections WHERE name = $1`, name).Scan(&d)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, status.Errorf(status.NotFound, "collection %q does not exist; create it first", name)
	}
	if err != nil {
		return 0, fmt.Errorf("read collection %s: %w", name, err)
	}
	return d, nil
}

func (s *store) ListCollections(ctx context.Context) ([]retrieval.Collection, error) {
	rows, err := s.pool.Query(ctx, `SELECT c.name, c.dims, (SELECT count(*) FROM nemoclave_documents d WHERE d.collection = c.name) FROM nemoclave_collections c ORDER BY c.name`)
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
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return retrieval.Collection{}, fmt.Errorf("create collection %s: %w", name, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var have int
	err = tx.QueryRow(ctx, `INSERT INTO nemoclave_collections (name, dims) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET dims = CASE WHEN nemoclave_collections.dims = 0 THEN excluded.dims ELSE nemoclave_collections.dims END
		RETURNING dims`, name, dims).Scan(&have)
	if err != nil {
		return retrieval.Collection{}, fmt.Errorf("create collection %s: %w", name, err)
	}
	if dims != 0 && have != dims {
		return retrieval.Collection{}, status.Errorf(status.InvalidArgument, "collection %q exists with %d dimensions, not %d; use another name or delete it first", name, have, dims)
	}
	if err := s.ensureIndex(ctx, tx, name, have); err != nil {
		return retrieval.Collection{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return retrieval.Collection{}, fmt.Errorf("create collection %s: %w", name, err)
	}
	out := retrieval.Collection{Name: name, Dimensions: have}
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM nemoclave_documents WHERE collection = $1`, name).Scan(&out.Count); err != nil {
		return out, fmt.Errorf("count documents of %s: %w", name, err)
	}
	return out, nil
}

func (s *store) DeleteCollection(ctx context.Context, name string) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("delete collection %s: %w", name, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	tag, err := tx.Exec(ctx, `DELETE FROM nemoclave_collections WHERE name = $1`, name)
	if err != nil {
		return fmt.Errorf("delete collection %s: %w", name, err)
	}
	if tag.RowsAffected() == 0 {
		return status.Errorf(status.NotFound, "collection %q does not exist", name)
	}
	if _, err := tx.Exec(ctx, `DROP INDEX IF EXISTS `+indexFor(name)); err != nil {
		return fmt.Errorf("drop the index of %s: %w", name, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("delete collection %s: %w", name, err)
	}
	return nil
}

// vectorLiteral is pgvector's text form, cast with ::vector in SQL.
func vectorLiteral(v []float32) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, x := range v {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatFloat(float64(x), 'g', -1, 32))
	}
	b.WriteByte(']')
	return b.String()
}

func parseVector(s string) ([]float32, error) {
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	out := make([]float32, len(parts))
	for i, p := range parts {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 32)
		if err != nil {
			return nil, fmt.Errorf("stored vector does not parse: %w", err)
		}
		out[i] = float32(f)
	}
	return out, nil
}

func isZero(v []float32) bool {
	var n float64
	for _, x := range v {
		n += float64(x) * float64(x)
	}
	return n == 0 || math.IsNaN(n) || math.IsInf(n, 0)
}
