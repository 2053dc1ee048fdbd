package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/nemoclave/nemoclave/sdk/embeddings"
	"github.com/nemoclave/nemoclave/sdk/memory"
	"github.com/nemoclave/nemoclave/sdk/status"
)

const (
	defaultListLimit = 50
	maxListLimit     = 1000
)

// migrateLock is the advisory lock key that serialises schema changes
// when several hosts configure the plugin at once.
const migrateLock = 0x6e656d6f6d656d // "nemomem"

// schemaSQL is idempotent. seq orders memories by insertion for List; the
// tsvector is generated so it can never drift from the text.
const schemaSQL = `
CREATE TABLE IF NOT EXISTS nemoclave_memories (
	seq        BIGSERIAL PRIMARY KEY,
	id         TEXT NOT NULL UNIQUE,
	agent      TEXT NOT NULL,
	"user"     TEXT NOT NULL,
	session    TEXT NOT NULL,
	text       TEXT NOT NULL,
	metadata   JSONB NOT NULL DEFAULT '{}',
	created_at TIMESTAMPTZ NOT NULL,
	model      TEXT NOT NULL DEFAULT '',
	tsv        TSVECTOR GENERATED ALWAYS AS (to_tsvector('english', text)) STORED
);
CREATE INDEX IF NOT EXISTS nemoclave_memories_scope ON nemoclave_memories (agent, "user", seq);
CREATE INDEX IF NOT EXISTS nemoclave_memories_tsv ON nemoclave_memories USING GIN (tsv);
`

// vectorSQL adds the embedding column; it needs pgvector. The column is
// untyped so a change of embedding model (and size) needs no migration.
const vectorSQL = `
CREATE EXTENSION IF NOT EXISTS vector;
ALTER TABLE nemoclave_memories ADD COLUMN IF NOT EXISTS embedding vector;
`

type store struct {
	pool  *pgxpool.Pool
	emb   embeddings.Embedder
	model string
	cfg   config
}

func openStore(ctx context.Context, cfg config, emb embeddings.Embedder) (*store, error) {
	pc, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, status.Errorf(status.InvalidArgument, "dsn: %v", err)
	}
	pc.MaxConns = int32(cfg.MaxConns)
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	s := &store{pool: pool, emb: emb, cfg: cfg}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	if emb != nil {
		if err := s.backfill(ctx); err != nil {
			pool.Close()
			return nil, err
		}
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
		return fmt.Errorf("lock the memory schema: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrateLock)
	if _, err := conn.Exec(ctx, schemaSQL); err != nil {
		return fmt.Errorf("create the memory schema: %w (the database user needs CREATE on the schema)", err)
	}
	if s.emb != nil {
		if _, err := conn.Exec(ctx, vectorSQL); err != nil {
			return fmt.Errorf("enable pgvector for vector recall: %w (install the pgvector extension in the database, or unwire embeddings to use full-text recall only)", err)
		}
	}
	return nil
}

func (s *store) Close() error { s.pool.Close(); return nil }

func newID() string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return "mem_" + hex.EncodeToString(b[:])
}

// vectorLiteral is pgvector's text form, cast with ::vector in SQL; it
// keeps the plugin free of a pgvector client dependency.
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

func (s *store) Remember(ctx context.Context, scope memory.Scope, text string, metadata map[string]any) (memory.Memory, error) {
	if strings.TrimSpace(text) == "" {
		return memory.Memory{}, status.Errorf(status.InvalidArgument, "memory text is empty; give the text to remember")
	}
	if metadata == nil {
		metadata = map[string]any{}
	}
	meta, err := json.Marshal(metadata)
	if err != nil {
		return memory.Memory{}, status.Errorf(status.InvalidArgument, "metadata is not JSON-compatible: %v", err)
	}
	m := memory.Memory{ID: newID(), Scope: scope, Text: text, Metadata: metadata, CreatedAt: time.Now().Truncate(time.Millisecond)}
	if s.emb == nil {
		_, err = s.pool.Exec(ctx, `INSERT INTO nemoclave_memories (id, agent, "user", session, text, metadata, created_at) VALUES ($1,$2,$3,$4,$5,$6::jsonb,$7)`,
			m.ID, scope.Agent, scope.User, scope.Session, text, string(meta), m.CreatedAt)
	} else {
		vecs, model, eerr := s.embed(ctx, []string{text})
		if eerr != nil {
			return memory.Memory{}, eerr
		}
		_, err = s.pool.Exec(ctx, `INSERT INTO nemoclave_memories (id, agent, "user", session, text, metadata, created_at, model, embedding) VALUES ($1,$2,$3,$4,$5,$6::jsonb,$7,$8,$9::vector)`,
			m.ID, scope.Agent, scope.User, scope.Session, text, string(meta), m.CreatedAt, model, vectorLiteral(vecs[0]))
	}
	if err != nil {
		return memory.Memory{}, fmt.Errorf("store memory: %w", err)
	}
	return m, nil
}

func (s *store) embed(ctx context.Context, texts []string) ([][]float32, string, error) {
	resp, err := s.emb.Embed(ctx, &embeddings.EmbedRequest{Inputs: texts})
	if err != nil {
		return nil, "", fmt.Errorf("embed memory text with the wired embeddings plugin: %w", err)
	}
	if len(resp.Vectors) != len(texts) {
		return nil, "", status.Errorf(status.Internal, "embeddings plugin returned %d vectors for %d texts", len(resp.Vectors), len(texts))
	}
	return resp.Vectors, resp.Model, nil
}

const memoryColumns = `seq, id, agent, "user", session, text, metadata::text, created_at`

func scanMemories(rows pgx.Rows) ([]memory.Memory, []int64, error) {
	defer rows.Close()
	var out []memory.Memory
	var seqs []int64
	for rows.Next() {
		var m memory.Memory
		var seq int64
		var meta string
		if err := rows.Scan(&seq, &m.ID, &m.Scope.Agent, &m.Scope.User, &m.Scope.Session, &m.Text, &meta, &m.CreatedAt); err != nil {
			return nil, nil, fmt.Errorf("read memory: %w", err)
		}
		if err := json.Unmarshal([]byte(meta), &m.Metadata); err != nil {
			return nil, nil, fmt.Errorf("memory %s has corrupt metadata: %w", m.ID, err)
		}
		out = append(out, m)
		seqs = append(seqs, seq)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("read memories: %w", err)
	}
	return out, seqs, nil
}

func (s *store) List(ctx context.Context, scope memory.Scope, limit int, pageToken string) (memory.Page, error) {
	if limit <= 0 {
		limit = defaultListLimit
	}
	limit = min(limit, maxListLimit)
	before := int64(1<<63 - 1)
	if pageToken != "" {
		n, err := strconv.ParseInt(strings.TrimPrefix(pageToken, "s"), 10, 64)
		if err != nil || !strings.HasPrefix(pageToken, "s") {
			return memory.Page{}, status.Errorf(status.InvalidArgument, "page token %q was not returned by this store; start again with an empty token", pageToken)
		}
		before = n
	}
	rows, err := s.pool.Query(ctx, `SELECT `+memoryColumns+` FROM nemoclave_memories
		WHERE agent = $1 AND "user" = $2 AND (session = '' OR session = $3) AND seq < $4
		ORDER BY seq DESC LIMIT $5`, scope.Agent, scope.User, scope.Session, before, limit+1)
	if err != nil {
		return memory.Page{}, fmt.Errorf("list memories: %w", err)
	}
	ms, seqs, err := scanMemories(rows)
	if err != nil {
		return memory.Page{}, err
	}
	page := memory.Page{Memories: ms}
	if len(ms) > limit {
		page.Memories = ms[:limit]
		page.NextPageToken = "s" + strconv.FormatInt(seqs[limit-1], 10)
	}
	return page, nil
}

func (s *store) Forget(ctx context.Context, scope memory.Scope, ids []string, all bool) (int, error) {
	if !all && len(ids) == 0 {
		return 0, status.Errorf(status.InvalidArgument, "forget needs ids or all; nothing was deleted")
	}
	q := `DELETE FROM nemoclave_memories WHERE agent = $1 AND "user" = $2 AND ($3 = '' OR session = $3)`
	args := []any{scope.Agent, scope.User, scope.Session}
	if !all {
		q += ` AND id = ANY($4)`
		args = append(args, ids)
	}
	tag, err := s.pool.Exec(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("forget memories: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

func (s *store) getBySeq(ctx context.Context, seqs []int64) (map[int64]memory.Memory, error) {
	out := map[int64]memory.Memory{}
	if len(seqs) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT `+memoryColumns+` FROM nemoclave_memories WHERE seq = ANY($1)`, seqs)
	if err != nil {
		return nil, fmt.Errorf("load recalled memories: %w", err)
	}
	ms, got, err := scanMemories(rows)
	if err != nil {
		return nil, err
	}
	for i, m := range ms {
		out[got[i]] = m
	}
	return out, nil
}

// backfill embeds memories stored without a vector or under another
// model, so wiring an embedder later or switching models keeps old
// memories recallable by meaning.
func (s *store) backfill(ctx context.Context) error {
	_, model, err := s.embed(ctx, []string{"model probe"})
	if err != nil {
		return err
	}
	s.model = model
	for {
		rows, err := s.pool.Query(ctx, `SELECT seq, text FROM nemoclave_memories WHERE embedding IS NULL OR model <> $1 LIMIT 64`, model)
		if err != nil {
			return fmt.Errorf("find memories to embed: %w", err)
		}
		var seqs []int64
		var texts []string
		for rows.Next() {
			var seq int64
			var t string
			if err := rows.Scan(&seq, &t); err != nil {
				rows.Close()
				return fmt.Errorf("find memories to embed: %w", err)
			}
			seqs, texts = append(seqs, seq), append(texts, t)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("find memories to embed: %w", err)
		}
		if len(seqs) == 0 {
			return nil
		}
		vecs, got, err := s.embed(ctx, texts)
		if err != nil {
			return err
		}
		if got != model {
			return status.Errorf(status.Internal, "embeddings plugin changed model from %q to %q while embedding stored memories; reconfigure to retry", model, got)
		}
		batch := &pgx.Batch{}
		for i, seq := range seqs {
			batch.Queue(`UPDATE nemoclave_memories SET embedding = $1::vector, model = $2 WHERE seq = $3`, vectorLiteral(vecs[i]), model, seq)
		}
		if err := s.pool.SendBatch(ctx, batch).Close(); err != nil {
			return fmt.Errorf("store embedded memories: %w", err)
		}
	}
}
