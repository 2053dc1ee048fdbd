package inference

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/nemoclave/nemoclave/internal/sqlitedb"
)

// UsageFileName is the usage database the daemon keeps in $NEMOCLAVE_HOME;
// `nemoclave inference status` reads it when no daemon is running.
const UsageFileName = "usage.db"

// SQLUsage is a UsageStore in SQL table inference_usage, one row per
// call: a SQLite file (OpenSQLiteUsage), or the PostgreSQL database a
// daemon in a cluster keeps its state in (OpenPostgresUsage).
type SQLUsage struct {
	db *sql.DB
	// postgres switches the placeholders to $n (OpenPostgresUsage).
	postgres bool
}

const usageSchema = `
CREATE TABLE IF NOT EXISTS inference_usage (
	ts_unix_ms INTEGER NOT NULL,
	sandbox TEXT NOT NULL,
	alias TEXT NOT NULL,
	provider TEXT NOT NULL,
	model TEXT NOT NULL,
	operation TEXT NOT NULL,
	input_tokens INTEGER NOT NULL,
	output_tokens INTEGER NOT NULL,
	cached_input_tokens INTEGER NOT NULL,
	cost_usd REAL NOT NULL,
	estimated INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS inference_usage_sandbox_ts ON inference_usage (sandbox, ts_unix_ms);`

// OpenSQLiteUsage opens (creating if needed) the usage table in the SQLite
// file at path, e.g. $NEMOCLAVE_HOME/state.db.
func OpenSQLiteUsage(path string) (*SQLUsage, error) {
	db, err := sqlitedb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("usage database: %w", err)
	}
	if _, err := db.Exec(usageSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("prepare usage table in %s (is it a nemoclave state file, and writable?): %w", path, err)
	}
	return &SQLUsage{db: db}, nil
}

// usageRowsPerInsert is how many records one INSERT statement carries:
// a statement per row was most of the writer's cost (11 parameters a row
// stays far below SQLite's and PostgreSQL's parameter limits).
const usageRowsPerInsert = 64

// Add inserts records in one transaction.
func (s *SQLUsage) Add(ctx context.Context, records []UsageRecord) error {
	if len(records) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record usage: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	args := make([]any, 0, 11*min(len(records), usageRowsPerInsert))
	for len(records) > 0 {
		n := min(len(records), usageRowsPerInsert)
		args = args[:0]
		for _, r := range records[:n] {
			est := 0
			if r.Estimated {
				est = 1
			}
			args = append(args, r.Time.UnixMilli(), r.Sandbox, r.Alias, r.Provider, r.Model, r.Operation,
				r.InputTokens, r.OutputTokens, r.CachedInputTokens, r.CostUSD, est)
		}
		if _, err := tx.ExecContext(ctx, s.q(insertUsage(n)), args...); err != nil {
			return fmt.Errorf("record usage: %w", err)
		}
		records = records[n:]
	}
	return tx.Commit()
}

// insertUsage is the INSERT of n rows.
func insertUsage(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO inference_usage VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`(?,?,?,?,?,?,?,?,?,?,?)`)
	}
	return b.String()
}

// Totals sums usage per sandbox, alias, provider and model since q.Since.
func (s *SQLUsage) Totals(ctx context.Context, q UsageQuery) ([]UsageTotal, error) {
	// The casts keep the sums integers on PostgreSQL (SUM of a BIGINT is
	// NUMERIC there) and change nothing on SQLite.
	query := `SELECT sandbox, alias, provider, model, COUNT(*), CAST(SUM(input_tokens) AS BIGINT), CAST(SUM(output_tokens) AS BIGINT),
		CAST(SUM(cached_input_tokens) AS BIGINT), SUM(cost_usd)
		FROM inference_usage WHERE ts_unix_ms >= ?`
	args := []any{q.Since.UnixMilli()}
	if q.Sandbox != "" {
		query += ` AND sandbox = ?`
		args = append(args, q.Sandbox)
	}
	query += ` GROUP BY sandbox, alias, provider, model ORDER BY sandbox, alias, provider, model`
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("read usage: %w", err)
	}
	defer rows.Close()
	var out []UsageTotal
	for rows.Next() {
		var t UsageTotal
		if err := rows.Scan(&t.Sandbox, &t.Alias, &t.Provider, &t.Model, &t.Requests, &t.InputTokens, &t.OutputTokens, &t.CachedInputTokens, &t.CostUSD); err != nil {
			return nil, fmt.Errorf("read usage: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// Close closes the database.
func (s *SQLUsage) Close() error { return s.db.Close() }

// q turns the ? placeholders of query into PostgreSQL's $n.
func (s *SQLUsage) q(query string) string {
	if !s.postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// usageWriter batches records into the store from one goroutine, so a
// request never waits for SQLite.
type usageWriter struct {
	store UsageStore
	in    chan UsageRecord
	done  chan struct{}
	onErr func(error)
}

func newUsageWriter(store UsageStore, onErr func(error)) *usageWriter {
	w := &usageWriter{store: store, in: make(chan UsageRecord, 4096), done: make(chan struct{}), onErr: onErr}
	go w.run()
	return w
}

func (w *usageWriter) add(r UsageRecord) {
	select {
	case w.in <- r:
	default:
		// The store is far behind; write synchronously rather than drop.
		if err := w.store.Add(context.Background(), []UsageRecord{r}); err != nil {
			w.onErr(err)
		}
	}
}

func (w *usageWriter) run() {
	defer close(w.done)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	var batch []UsageRecord
	flush := func() {
		if len(batch) == 0 {
			return
		}
		if err := w.store.Add(context.Background(), batch); err != nil {
			w.onErr(err)
		}
		batch = batch[:0]
	}
	for {
		select {
		case r, ok := <-w.in:
			if !ok {
				flush()
				return
			}
			batch = append(batch, r)
			if len(batch) >= 256 {
				flush()
			}
		case <-tick.C:
			flush()
		}
	}
}

// close flushes what is pending and stops the writer.
func (w *usageWriter) close() {
	close(w.in)
	<-w.done
}
