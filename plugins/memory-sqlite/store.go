package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nemoclave/nemoclave/internal/sqlitedb"
	"github.com/nemoclave/nemoclave/sdk/embeddings"
	"github.com/nemoclave/nemoclave/sdk/memory"
	"github.com/nemoclave/nemoclave/sdk/status"
)

const (
	defaultListLimit = 50
	maxListLimit     = 1000
)

// schemaSQL is idempotent. rowid orders memories by insertion, which is
// what List pages by (newest first). The FTS5 table is an external-content
// index over memories.text kept in sync by triggers, so a memory and its
// index entry commit in one transaction.
const schemaSQL = `
CREATE TABLE IF NOT EXISTS memories (
	rowid      INTEGER PRIMARY KEY,
	id         TEXT NOT NULL UNIQUE,
	agent      TEXT NOT NULL,
	user       TEXT NOT NULL,
	session    TEXT NOT NULL,
	text       TEXT NOT NULL,
	metadata   TEXT NOT NULL DEFAULT '{}',
	created_ms INTEGER NOT NULL,
	model      TEXT NOT NULL DEFAULT '',
	vector     BLOB
);
CREATE INDEX IF NOT EXISTS memories_scope ON memories(agent, user, rowid);
CREATE VIRTUAL TABLE IF NOT EXISTS memories_fts USING fts5(
	text, content='memories', content_rowid='rowid', tokenize='porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS memories_ai AFTER INSERT ON memories BEGIN
	INSERT INTO memories_fts(rowid, text) VALUES (new.rowid, new.text);
END;
CREATE TRIGGER IF NOT EXISTS memories_ad AFTER DELETE ON memories BEGIN
	INSERT INTO memories_fts(memories_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
END;
`

// store is one open database plus its in-memory vector index.
type store struct {
	db    *sql.DB
	emb   embeddings.Embedder
	model string // the wired embedder's model; "" without one
	cfg   config
	vecs  *vectorIndex
}

// openDB opens path as every nemoclave SQLite file is opened (WAL,
// synchronous=FULL: an acknowledged write survives SIGKILL and power
// loss; see internal/sqlitedb).
func openDB(path string) (*sql.DB, error) {
	db, err := sqlitedb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("memory database: %w (the plugin may only write under its state dir)", err)
	}
	return db, nil
}

func openStore(ctx context.Context, path string, emb embeddings.Embedder, cfg config) (*store, error) {
	db, err := openDB(path)
	if err != nil {
		return nil, err
	}
	if _, err := db.ExecContext(ctx, schemaSQL); err != nil {
		db.Close()
		return nil, fmt.Errorf("create the memory schema in %s: %w (is the file a nemoclave memory database?)", path, err)
	}
	s := &store{db: db, emb: emb, cfg: cfg, vecs: newVectorIndex()}
	if emb != nil {
		if err := s.backfill(ctx); err != nil {
			db.Close()
			return nil, err
		}
	}
	if err := s.loadIndex(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func (s *store) Close() error { return s.db.Close() }

func newID() string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return "mem_" + hex.EncodeToString(b[:])
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
	var vec []float32
	var blob []byte
	var model string
	if s.emb != nil {
		vecs, m, err := s.embed(ctx, []string{text})
		if err != nil {
			return memory.Memory{}, err
		}
		vec, model, blob = vecs[0], m, encodeVector(vecs[0])
	}
	m := memory.Memory{ID: newID(), Scope: scope, Text: text, Metadata: metadata, CreatedAt: time.Now().Truncate(time.Millisecond)}
	res, err := s.db.ExecContext(ctx,
		`INSERT INTO memories(id, agent, user, session, text, metadata, created_ms, model, vector) VALUES (?,?,?,?,?,?,?,?,?)`,
		m.ID, scope.Agent, scope.User, scope.Session, text, string(meta), m.CreatedAt.UnixMilli(), model, blob)
	if err != nil {
		return memory.Memory{}, fmt.Errorf("store memory: %w", err)
	}
	rowid, err := res.LastInsertId()
	if err != nil {
		return memory.Memory{}, fmt.Errorf("store memory: %w", err)
	}
	s.vecs.add(scope, rowid, vec)
	return m, nil
}

// embed embeds texts and returns unit-length vectors.
func (s *store) embed(ctx context.Context, texts []string) ([][]float32, string, error) {
	resp, err := s.emb.Embed(ctx, &embeddings.EmbedRequest{Inputs: texts})
	if err != nil {
		return nil, "", fmt.Errorf("embed memory text with the wired embeddings plugin: %w", err)
	}
	if len(resp.Vectors) != len(texts) {
		return nil, "", status.Errorf(status.Internal, "embeddings plugin returned %d vectors for %d texts", len(resp.Vectors), len(texts))
	}
	for _, v := range resp.Vectors {
		normalize(v)
	}
	return resp.Vectors, resp.Model, nil
}

func (s *store) List(ctx context.Context, scope memory.Scope, limit int, pageToken string) (memory.Page, error) {
	if limit <= 0 {
		limit = defaultListLimit
	}
	limit = min(limit, maxListLimit)
	before := int64(1<<63 - 1)
	if pageToken != "" {
		n, err := strconv.ParseInt(strings.TrimPrefix(pageToken, "r"), 10, 64)
		if err != nil || !strings.HasPrefix(pageToken, "r") {
			return memory.Page{}, status.Errorf(status.InvalidArgument, "page token %q was not returned by this store; start again with an empty token", pageToken)
		}
		before = n
	}
	rows, err := s.db.QueryContext(ctx, `SELECT rowid, id, agent, user, session, text, metadata, created_ms FROM memories
		WHERE agent = ? AND user = ? AND (session = '' OR session = ?) AND rowid < ?
		ORDER BY rowid DESC LIMIT ?`, scope.Agent, scope.User, scope.Session, before, limit+1)
	if err != nil {
		return memory.Page{}, fmt.Errorf("list memories: %w", err)
	}
	ms, rowids, err := scanMemories(rows)
	if err != nil {
		return memory.Page{}, err
	}
	page := memory.Page{Memories: ms}
	if len(ms) > limit {
		page.Memories = ms[:limit]
		page.NextPageToken = "r" + strconv.FormatInt(rowids[limit-1], 10)
	}
	return page, nil
}

func scanMemories(rows *sql.Rows) ([]memory.Memory, []int64, error) {
	defer rows.Close()
	var out []memory.Memory
	var rowids []int64
	for rows.Next() {
		var m memory.Memory
		var rowid, ms int64
		var meta string
		if err := rows.Scan(&rowid, &m.ID, &m.Scope.Agent, &m.Scope.User, &m.Scope.Session, &m.Text, &meta, &ms); err != nil {
			return nil, nil, fmt.Errorf("read memory: %w", err)
		}
		if err := json.Unmarshal([]byte(meta), &m.Metadata); err != nil {
			return nil, nil, fmt.Errorf("memory %s has corrupt metadata: %w", m.ID, err)
		}
		m.CreatedAt = time.UnixMilli(ms)
		out = append(out, m)
		rowids = append(rowids, rowid)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("read memories: %w", err)
	}
	return out, rowids, nil
}

func (s *store) Forget(ctx context.Context, scope memory.Scope, ids []string, all bool) (int, error) {
	if !all && len(ids) == 0 {
		return 0, status.Errorf(status.InvalidArgument, "forget needs ids or all; nothing was deleted")
	}
	q := `DELETE FROM memories WHERE agent = ? AND user = ? AND (? = '' OR session = ?)`
	args := []any{scope.Agent, scope.User, scope.Session, scope.Session}
	if !all {
		q += ` AND id IN (` + strings.TrimSuffix(strings.Repeat("?,", len(ids)), ",") + `)`
		for _, id := range ids {
			args = append(args, id)
		}
	}
	rows, err := s.db.QueryContext(ctx, q+` RETURNING rowid`, args...)
	if err != nil {
		return 0, fmt.Errorf("forget memories: %w", err)
	}
	var gone []int64
	for rows.Next() {
		var r int64
		if err := rows.Scan(&r); err != nil {
			rows.Close()
			return 0, fmt.Errorf("forget memories: %w", err)
		}
		gone = append(gone, r)
	}
	// The statement commits when its rows are closed; only then is the
	// deletion durable and reported.
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return 0, fmt.Errorf("forget memories: %w", err)
	}
	s.vecs.remove(scope, gone)
	return len(gone), nil
}

// getByRowid loads memories by rowid, in the order given.
func (s *store) getByRowid(ctx context.Context, rowids []int64) (map[int64]memory.Memory, error) {
	out := map[int64]memory.Memory{}
	if len(rowids) == 0 {
		return out, nil
	}
	args := make([]any, len(rowids))
	for i, r := range rowids {
		args[i] = r
	}
	rows, err := s.db.QueryContext(ctx, `SELECT rowid, id, agent, user, session, text, metadata, created_ms FROM memories
		WHERE rowid IN (`+strings.TrimSuffix(strings.Repeat("?,", len(rowids)), ",")+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("load recalled memories: %w", err)
	}
	ms, ids, err := scanMemories(rows)
	if err != nil {
		return nil, err
	}
	for i, m := range ms {
		out[ids[i]] = m
	}
	return out, nil
}
