package state

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	neturl "net/url"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver

	"github.com/nemoclave/nemoclave/internal/sqlitedb"
	"github.com/nemoclave/nemoclave/policy"
)

// DB is the state database: SQLite (one machine) or PostgreSQL (a daemon
// in a cluster). Safe for concurrent use.
type DB struct {
	db       *sql.DB
	postgres bool
}

// ErrNotFound is returned for a sandbox the state does not know.
var ErrNotFound = errors.New("not found in state")

const schema = `
CREATE TABLE IF NOT EXISTS sandboxes (
	name        TEXT PRIMARY KEY,
	blueprint   TEXT NOT NULL,
	agent       TEXT NOT NULL DEFAULT '',
	driver      TEXT NOT NULL,
	state       TEXT NOT NULL,
	run_id      TEXT NOT NULL DEFAULT '',
	detail_json TEXT NOT NULL DEFAULT '{}',
	exit_code   INTEGER NOT NULL DEFAULT 0,
	reason      TEXT NOT NULL DEFAULT '',
	created_at  BIGINT NOT NULL,
	updated_at  BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS policy_revisions (
	sandbox     TEXT NOT NULL,
	revision    INTEGER NOT NULL,
	source      TEXT NOT NULL,
	policy_json TEXT NOT NULL,
	created_at  BIGINT NOT NULL,
	PRIMARY KEY (sandbox, revision)
);
CREATE TABLE IF NOT EXISTS approvals (
	id         ` + "%s" + `,
	sandbox    TEXT NOT NULL,
	host       TEXT NOT NULL,
	port       INTEGER NOT NULL,
	decision   TEXT NOT NULL,
	scope      TEXT NOT NULL,
	operator   TEXT NOT NULL DEFAULT '',
	decided_at BIGINT NOT NULL
);
`

// OpenURL opens the state named by a URL: postgres://… (or
// postgresql://…) for PostgreSQL, anything else is a SQLite file path.
func OpenURL(ctx context.Context, url string) (*DB, error) {
	if !IsPostgresURL(url) {
		return Open(url)
	}
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, fmt.Errorf("open state database: %w", err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("state database %s: %w (check the URL, that the server runs, and the user's rights)", redactURL(url), err)
	}
	d := &DB{db: db, postgres: true}
	if _, err := db.ExecContext(ctx, fmt.Sprintf(schema, "BIGSERIAL PRIMARY KEY")); err != nil {
		db.Close()
		return nil, fmt.Errorf("state database %s: create tables: %w", redactURL(url), err)
	}
	return d, nil
}

// IsPostgresURL says whether a --state-url names PostgreSQL.
func IsPostgresURL(url string) bool {
	return strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://")
}

// redactURL drops the password from a database URL for error messages.
func redactURL(raw string) string {
	u, err := neturl.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// q adapts a query written with ? placeholders to the database's dialect.
func (d *DB) q(query string) string {
	if !d.postgres {
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

// Open opens (creating if needed) the SQLite state database at path.
func Open(path string) (*DB, error) {
	db, err := sqlitedb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	if _, err := db.Exec(fmt.Sprintf(schema, "INTEGER PRIMARY KEY AUTOINCREMENT")); err != nil {
		db.Close()
		return nil, fmt.Errorf("state %s: %w (if the file is corrupt, move it aside; the daemon recreates it)", path, err)
	}
	return &DB{db: db}, nil
}

// Close closes the database.
func (d *DB) Close() error { return d.db.Close() }

// Sandbox is the durable record of one sandbox.
type Sandbox struct {
	Name      string          `json:"name"`
	Blueprint string          `json:"blueprint"`
	Agent     string          `json:"agent,omitempty"`
	Driver    string          `json:"driver"`
	State     string          `json:"state"`
	RunID     string          `json:"run_id,omitempty"`
	Detail    json.RawMessage `json:"detail,omitempty"`
	ExitCode  int             `json:"exit_code"`
	Reason    string          `json:"reason,omitempty"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
}

// PutSandbox inserts or replaces a sandbox record.
func (d *DB) PutSandbox(ctx context.Context, s Sandbox) error {
	now := time.Now().UTC()
	if s.CreatedAt.IsZero() {
		s.CreatedAt = now
	}
	if len(s.Detail) == 0 {
		s.Detail = json.RawMessage("{}")
	}
	_, err := d.db.ExecContext(ctx, d.q(`INSERT INTO sandboxes (name, blueprint, agent, driver, state, run_id, detail_json, exit_code, reason, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(name) DO UPDATE SET blueprint=excluded.blueprint, agent=excluded.agent, driver=excluded.driver, state=excluded.state,
			run_id=excluded.run_id, detail_json=excluded.detail_json, exit_code=excluded.exit_code, reason=excluded.reason, updated_at=excluded.updated_at`),
		s.Name, s.Blueprint, s.Agent, s.Driver, s.State, s.RunID, string(s.Detail), s.ExitCode, s.Reason, s.CreatedAt.UnixMilli(), now.UnixMilli())
	return err
}

// SetSandboxState records a state change.
func (d *DB) SetSandboxState(ctx context.Context, name, st string, exitCode int, reason string) error {
	res, err := d.db.ExecContext(ctx, d.q(`UPDATE sandboxes SET state=?, exit_code=?, reason=?, updated_at=? WHERE name=?`),
		st, exitCode, reason, time.Now().UTC().UnixMilli(), name)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("sandbox %q: %w", name, ErrNotFound)
	}
	return nil
}

func scanSandbox(row interface{ Scan(...any) error }) (Sandbox, error) {
	var s Sandbox
	var detail string
	var created, updated int64
	err := row.Scan(&s.Name, &s.Blueprint, &s.Agent, &s.Driver, &s.State, &s.RunID, &detail, &s.ExitCode, &s.Reason, &created, &updated)
	s.Detail = json.RawMessage(detail)
	s.CreatedAt, s.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	return s, err
}

const sandboxCols = `name, blueprint, agent, driver, state, run_id, detail_json, exit_code, reason, created_at, updated_at`

// Sandbox returns one record.
func (d *DB) Sandbox(ctx context.Context, name string) (Sandbox, error) {
	s, err := scanSandbox(d.db.QueryRowContext(ctx, d.q(`SELECT `+sandboxCols+` FROM sandboxes WHERE name=?`), name))
	if errors.Is(err, sql.ErrNoRows) {
		return s, fmt.Errorf("sandbox %q: %w", name, ErrNotFound)
	}
	return s, err
}

// Sandboxes returns every record, by name.
func (d *DB) Sandboxes(ctx context.Context) ([]Sandbox, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT `+sandboxCols+` FROM sandboxes ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Sandbox
	for rows.Next() {
		s, err := scanSandbox(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// DeleteSandbox removes a sandbox and its policy revisions. Approval
// answers are kept: they are the audit trail of operator decisions.
func (d *DB) DeleteSandbox(ctx context.Context, name string) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, d.q(`DELETE FROM sandboxes WHERE name=?`), name); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, d.q(`DELETE FROM policy_revisions WHERE sandbox=?`), name); err != nil {
		return err
	}
	return tx.Commit()
}

// Revision is one recorded policy revision.
type Revision struct {
	Sandbox   string         `json:"sandbox"`
	Revision  int            `json:"revision"`
	Source    string         `json:"source"`
	Policy    *policy.Policy `json:"policy"`
	CreatedAt time.Time      `json:"created_at"`
}

// AddRevision records a policy revision; the revision number is the
// policy's own.
func (d *DB) AddRevision(ctx context.Context, sandbox, source string, p *policy.Policy) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	_, err = d.db.ExecContext(ctx, d.q(`INSERT INTO policy_revisions (sandbox, revision, source, policy_json, created_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (sandbox, revision) DO UPDATE SET source=excluded.source, policy_json=excluded.policy_json, created_at=excluded.created_at`),
		sandbox, p.Revision, source, string(b), time.Now().UTC().UnixMilli())
	return err
}

// Revisions returns a sandbox's revisions, oldest first.
func (d *DB) Revisions(ctx context.Context, sandbox string) ([]Revision, error) {
	rows, err := d.db.QueryContext(ctx, d.q(`SELECT revision, source, policy_json, created_at FROM policy_revisions WHERE sandbox=? ORDER BY revision`), sandbox)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Revision
	for rows.Next() {
		r := Revision{Sandbox: sandbox}
		var pj string
		var created int64
		if err := rows.Scan(&r.Revision, &r.Source, &pj, &created); err != nil {
			return nil, err
		}
		r.Policy = &policy.Policy{}
		if err := json.Unmarshal([]byte(pj), r.Policy); err != nil {
			return nil, fmt.Errorf("policy revision %d of %s: %w", r.Revision, sandbox, err)
		}
		r.CreatedAt = time.UnixMilli(created).UTC()
		out = append(out, r)
	}
	return out, rows.Err()
}

// LatestPolicy returns the newest revision, reading only that row.
func (d *DB) LatestPolicy(ctx context.Context, sandbox string) (*Revision, error) {
	r := Revision{Sandbox: sandbox, Policy: &policy.Policy{}}
	var pj string
	var created int64
	err := d.db.QueryRowContext(ctx, d.q(`SELECT revision, source, policy_json, created_at FROM policy_revisions WHERE sandbox=? ORDER BY revision DESC LIMIT 1`), sandbox).
		Scan(&r.Revision, &r.Source, &pj, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("policy of sandbox %q: %w", sandbox, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(pj), r.Policy); err != nil {
		return nil, fmt.Errorf("policy revision %d of %s: %w", r.Revision, sandbox, err)
	}
	r.CreatedAt = time.UnixMilli(created).UTC()
	return &r, nil
}

// Approval is an operator's answer to an egress approval.
type Approval struct {
	ID        int64     `json:"id"`
	Sandbox   string    `json:"sandbox"`
	Host      string    `json:"host"`
	Port      int       `json:"port"`
	Decision  string    `json:"decision"` // "allow" or "deny"
	Scope     string    `json:"scope"`    // "once", "sandbox", "persist"
	Operator  string    `json:"operator,omitempty"`
	DecidedAt time.Time `json:"decided_at"`
}

// AddApproval records an answer.
func (d *DB) AddApproval(ctx context.Context, a Approval) (int64, error) {
	if a.DecidedAt.IsZero() {
		a.DecidedAt = time.Now().UTC()
	}
	var id int64
	err := d.db.QueryRowContext(ctx, d.q(`INSERT INTO approvals (sandbox, host, port, decision, scope, operator, decided_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`),
		a.Sandbox, a.Host, a.Port, a.Decision, a.Scope, a.Operator, a.DecidedAt.UnixMilli()).Scan(&id)
	return id, err
}

// Approvals returns the answers for a sandbox ("" for all), newest first.
func (d *DB) Approvals(ctx context.Context, sandbox string) ([]Approval, error) {
	q := `SELECT id, sandbox, host, port, decision, scope, operator, decided_at FROM approvals`
	var args []any
	if sandbox != "" {
		q += ` WHERE sandbox=?`
		args = append(args, sandbox)
	}
	rows, err := d.db.QueryContext(ctx, d.q(q+` ORDER BY id DESC`), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Approval
	for rows.Next() {
		var a Approval
		var at int64
		if err := rows.Scan(&a.ID, &a.Sandbox, &a.Host, &a.Port, &a.Decision, &a.Scope, &a.Operator, &at); err != nil {
			return nil, err
		}
		a.DecidedAt = time.UnixMilli(at).UTC()
		out = append(out, a)
	}
	return out, rows.Err()
}
