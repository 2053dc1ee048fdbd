package inference

import (
	"context"
	"database/sql"
	"fmt"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver

	"github.com/nemoclave/nemoclave/internal/secrets"
)

// The PostgreSQL table has the SQLite table's columns with PostgreSQL's
// types: every replica of a daemon in a cluster writes its sandboxes' calls
// into it, and any replica reads the totals.
const usageSchemaPostgres = `
CREATE TABLE IF NOT EXISTS inference_usage (
	ts_unix_ms BIGINT NOT NULL,
	sandbox TEXT NOT NULL,
	alias TEXT NOT NULL,
	provider TEXT NOT NULL,
	model TEXT NOT NULL,
	operation TEXT NOT NULL,
	input_tokens BIGINT NOT NULL,
	output_tokens BIGINT NOT NULL,
	cached_input_tokens BIGINT NOT NULL,
	cost_usd DOUBLE PRECISION NOT NULL,
	estimated INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS inference_usage_sandbox_ts ON inference_usage (sandbox, ts_unix_ms);`

// OpenPostgresUsage opens (creating if needed) the usage table in the
// PostgreSQL database at url (postgres://…), the daemon's --state-url.
func OpenPostgresUsage(ctx context.Context, url string) (*SQLUsage, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, fmt.Errorf("open usage database: %w", err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("usage database %s: %w (check the URL, that the server runs, and the user's rights)", secrets.ShowURL(url), err)
	}
	// Two replicas starting at once may both create the table; one of
	// them then sees a unique violation on the catalog, which a second
	// attempt (finding the table) resolves.
	for attempt := 0; ; attempt++ {
		_, err = db.ExecContext(ctx, usageSchemaPostgres)
		if err == nil || attempt == 2 {
			break
		}
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("usage database %s: create table inference_usage: %w", secrets.ShowURL(url), err)
	}
	return &SQLUsage{db: db, postgres: true}, nil
}
