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
	url      string // PostgreSQL: for the listening connection (notify.go)
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
CREATE TABLE IF NOT EXISTS egress_cas (
	sandbox    TEXT PRIMARY KEY,
	cert_pem   TEXT NOT NULL,
	key_pem    TEXT NOT NULL,
	created_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS pending_approvals (
	id        TEXT PRIMARY KEY,
	holder    TEXT NOT NULL,
	sandbox   TEXT NOT NULL,
	host      TEXT NOT NULL,
	port      INTEGER NOT NULL,
	method    TEXT NOT NULL DEFAULT '',
	path      TEXT NOT NULL DEFAULT '',
	revision  INTEGER NOT NULL DEFAULT 0,
	waiting   INTEGER NOT NULL DEFAULT 0,
	requested BIGINT NOT NULL,
	expires   BIGINT NOT NULL,
	answer    TEXT NOT NULL DEFAULT '',
	operator  TEXT NOT NULL DEFAULT '',
	failure   TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS egress_grants (
	sandbox TEXT NOT NULL,
	target  TEXT NOT NULL,
	PRIMARY KEY (sandbox, target)
);
CREATE TABLE IF NOT EXISTS hand_runs (
	sandbox    TEXT PRIMARY KEY,
	digest     TEXT NOT NULL,
	spec       TEXT NOT NULL,
	created_at BIGINT NOT NULL
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
	d := &DB{db: db, postgres: true, url: url}
	if _, err := db.ExecContext(ctx, fmt.Sprintf(schema, "BIGSERIAL PRIMARY KEY")); err != nil {
		db.Close()
		return nil, fmt.Errorf("state database %s: create tables: %w", redactURL(url), err)
	}
	// A state created before answers could report their failure.
	if _, err := db.ExecContext(ctx, `ALTER TABLE pending_approvals ADD COLUMN IF NOT EXISTS failure TEXT NOT NULL DEFAULT ''`); err != nil {
		db.Close()
		return nil, fmt.Errorf("state database %s: add pending_approvals.failure: %w", redactURL(url), err)
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
	// A state created before answers could report their failure (SQLite
	// has no ADD COLUMN IF NOT EXISTS).
	var hasFailure int
	if err := db.QueryRow(`SELECT count(*) FROM pragma_table_info('pending_approvals') WHERE name='failure'`).Scan(&hasFailure); err == nil && hasFailure == 0 {
		if _, err := db.Exec(`ALTER TABLE pending_approvals ADD COLUMN failure TEXT NOT NULL DEFAULT ''`); err != nil {
			db.Close()
			return nil, fmt.Errorf("state %s: add pending_approvals.failure: %w", path, err)
		}
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

// DeleteSandbox removes a sandbox, its policy revisions, its egress CA,
// its lifetime egress grants, its pending approvals and its stored hand-run
// blueprint. Approval answers are kept: they are the audit trail of
// operator decisions.
func (d *DB) DeleteSandbox(ctx context.Context, name string) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, d.q(`DELETE FROM sandboxes WHERE name=?`), name); err != nil {
		return err
	}
	for _, table := range []string{"policy_revisions", "egress_cas", "egress_grants", "pending_approvals", "hand_runs"} {
		if _, err := tx.ExecContext(ctx, d.q(`DELETE FROM `+table+` WHERE sandbox=?`), name); err != nil {
			return err
		}
	}
	if d.postgres {
		if _, err := tx.ExecContext(ctx, `SELECT pg_notify('`+notifyChannel+`', $1)`, ChangePending); err != nil {
			return err
		}
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
	_, err = d.execNotify(ctx, ChangeRevision, `INSERT INTO policy_revisions (sandbox, revision, source, policy_json, created_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (sandbox, revision) DO UPDATE SET source=excluded.source, policy_json=excluded.policy_json, created_at=excluded.created_at`,
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

// LatestRevisions returns each sandbox's newest policy revision number,
// in one query (replicas compare it with the revision in force).
func (d *DB) LatestRevisions(ctx context.Context) (map[string]int, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT sandbox, MAX(revision) FROM policy_revisions GROUP BY sandbox`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var sb string
		var rev int
		if err := rows.Scan(&sb, &rev); err != nil {
			return nil, err
		}
		out[sb] = rev
	}
	return out, rows.Err()
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

// Shared says whether other daemons may use this state at once: PostgreSQL
// (the replicas of a daemon in a cluster). A SQLite state is one daemon's.
func (d *DB) Shared() bool { return d.postgres }

// LoadOrStoreCA stores a sandbox's egress inspection CA unless one is
// stored, and returns the stored one: of replicas racing to create it, one
// wins and all use its. The key is kept as the row holds it (see
// docs/kubernetes.md, "Replicas"); DeleteSandbox removes it.
func (d *DB) LoadOrStoreCA(ctx context.Context, sandbox string, certPEM, keyPEM []byte) ([]byte, []byte, error) {
	if _, err := d.db.ExecContext(ctx, d.q(`INSERT INTO egress_cas (sandbox, cert_pem, key_pem, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (sandbox) DO NOTHING`), sandbox, string(certPEM), string(keyPEM), time.Now().UTC().UnixMilli()); err != nil {
		return nil, nil, err
	}
	var c, k string
	if err := d.db.QueryRowContext(ctx, d.q(`SELECT cert_pem, key_pem FROM egress_cas WHERE sandbox=?`), sandbox).Scan(&c, &k); err != nil {
		return nil, nil, err
	}
	return []byte(c), []byte(k), nil
}

// PendingApproval is an egress request held for an operator by one daemon
// (Holder), kept in the state so that an operator talking to any replica
// sees it and can answer it. The holder applies an answer another replica
// wrote (Answer, Operator) and then deletes the row.
type PendingApproval struct {
	ID        string    `json:"id"`
	Holder    string    `json:"holder"`
	Sandbox   string    `json:"sandbox"`
	Host      string    `json:"host"`
	Port      int       `json:"port"`
	Method    string    `json:"method,omitempty"`
	Path      string    `json:"path,omitempty"`
	Revision  int       `json:"revision"`
	Waiting   int       `json:"waiting"`
	Requested time.Time `json:"requested"`
	Expires   time.Time `json:"expires"`
	Answer    string    `json:"answer,omitempty"` // "" while unanswered
	Operator  string    `json:"operator,omitempty"`
	// Failure is why the holder could not apply Answer ("" when it has
	// not tried, or applied it and deleted the row).
	Failure string `json:"failure,omitempty"`
}

// PutPendingApproval records a held request, or updates its waiting count;
// an answer already written is kept. Writing what the row already holds
// changes nothing (and notifies nobody): the holder mirrors its requests
// on every sync.
func (d *DB) PutPendingApproval(ctx context.Context, a PendingApproval) error {
	_, err := d.execNotify(ctx, ChangePending, `INSERT INTO pending_approvals (id, holder, sandbox, host, port, method, path, revision, waiting, requested, expires)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET waiting=excluded.waiting WHERE pending_approvals.waiting <> excluded.waiting`,
		a.ID, a.Holder, a.Sandbox, a.Host, a.Port, a.Method, a.Path, a.Revision, a.Waiting, a.Requested.UnixMilli(), a.Expires.UnixMilli())
	return err
}

// DeletePendingApproval removes a held request (answered or expired).
func (d *DB) DeletePendingApproval(ctx context.Context, id string) error {
	_, err := d.execNotify(ctx, ChangePending, `DELETE FROM pending_approvals WHERE id=?`, id)
	return err
}

// DeletePendingApprovalsOf removes every request held by holder, and any
// that expired before cutoff (left by a daemon that died holding them).
func (d *DB) DeletePendingApprovalsOf(ctx context.Context, holder string, cutoff time.Time) error {
	_, err := d.execNotify(ctx, ChangePending, `DELETE FROM pending_approvals WHERE holder=? OR expires<?`, holder, cutoff.UnixMilli())
	return err
}

// FailPendingApproval records that the holder could not apply the answer
// written to a held request (the reason, for the replica that wrote the
// answer to report), and keeps the row until keep for that replica to read
// and delete it.
func (d *DB) FailPendingApproval(ctx context.Context, id, reason string, keep time.Time) error {
	if reason == "" {
		return errors.New("state: a failure without a reason")
	}
	_, err := d.execNotify(ctx, ChangePending, `UPDATE pending_approvals SET failure=?, expires=? WHERE id=? AND answer<>''`, reason, keep.UnixMilli(), id)
	return err
}

const pendingCols = `id, holder, sandbox, host, port, method, path, revision, waiting, requested, expires, answer, operator, failure`

// PendingApprovals returns the held requests, oldest first: all
// (holder "") or those of one holder.
func (d *DB) PendingApprovals(ctx context.Context, holder string) ([]PendingApproval, error) {
	q, args := `SELECT `+pendingCols+` FROM pending_approvals`, []any{}
	if holder != "" {
		q += ` WHERE holder=?`
		args = append(args, holder)
	}
	rows, err := d.db.QueryContext(ctx, d.q(q+` ORDER BY requested, id`), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []PendingApproval
	for rows.Next() {
		var a PendingApproval
		var req, exp int64
		if err := rows.Scan(&a.ID, &a.Holder, &a.Sandbox, &a.Host, &a.Port, &a.Method, &a.Path, &a.Revision, &a.Waiting, &req, &exp, &a.Answer, &a.Operator, &a.Failure); err != nil {
			return nil, err
		}
		a.Requested, a.Expires = time.UnixMilli(req).UTC(), time.UnixMilli(exp).UTC()
		out = append(out, a)
	}
	return out, rows.Err()
}

// AnswerPendingApproval writes an operator's answer for the holder to
// apply. It fails with ErrNotFound when the request is gone (answered,
// expired or never held) and when someone answered it first.
func (d *DB) AnswerPendingApproval(ctx context.Context, id, answer, operator string) error {
	if answer == "" {
		return errors.New("state: an empty answer")
	}
	n, err := d.execNotify(ctx, ChangePending, `UPDATE pending_approvals SET answer=?, operator=? WHERE id=? AND answer=''`, answer, operator, id)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("pending approval %q: %w", id, ErrNotFound)
	}
	return nil
}

// AddGrant records a lifetime egress grant ("host:port") of a sandbox, so
// that every replica serving it allows the target.
func (d *DB) AddGrant(ctx context.Context, sandbox, target string) error {
	_, err := d.execNotify(ctx, ChangeGrant, `INSERT INTO egress_grants (sandbox, target) VALUES (?, ?) ON CONFLICT (sandbox, target) DO NOTHING`, sandbox, target)
	return err
}

// Grants returns every sandbox's lifetime egress grants.
func (d *DB) Grants(ctx context.Context) (map[string][]string, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT sandbox, target FROM egress_grants ORDER BY sandbox, target`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var sb, t string
		if err := rows.Scan(&sb, &t); err != nil {
			return nil, err
		}
		out[sb] = append(out[sb], t)
	}
	return out, rows.Err()
}

// HandRun is the blueprint of a sandbox started by hand (`nemoclave run`)
// with a driver whose sandboxes outlive their daemon, kept in a shared
// state so that every replica can serve the sandbox: Spec is the packed
// blueprint (its directory, var files and variable values, as an upload),
// Digest its hash; the sandboxes of one run share both.
type HandRun struct {
	Sandbox string
	Digest  string
	Spec    []byte
}

// PutHandRun records (or replaces) the blueprint a sandbox was run from.
func (d *DB) PutHandRun(ctx context.Context, h HandRun) error {
	_, err := d.db.ExecContext(ctx, d.q(`INSERT INTO hand_runs (sandbox, digest, spec, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT(sandbox) DO UPDATE SET digest=excluded.digest, spec=excluded.spec, created_at=excluded.created_at`),
		h.Sandbox, h.Digest, string(h.Spec), time.Now().UTC().UnixMilli())
	return err
}

// DeleteHandRun forgets a sandbox's stored blueprint (the sandbox of that
// name is now run otherwise).
func (d *DB) DeleteHandRun(ctx context.Context, sandbox string) error {
	_, err := d.db.ExecContext(ctx, d.q(`DELETE FROM hand_runs WHERE sandbox=?`), sandbox)
	return err
}

// HandRunDigests returns the digest of every stored hand run, by sandbox:
// cheap enough to poll; HandRunSpec reads one blueprint.
func (d *DB) HandRunDigests(ctx context.Context) (map[string]string, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT sandbox, digest FROM hand_runs`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var sb, digest string
		if err := rows.Scan(&sb, &digest); err != nil {
			return nil, err
		}
		out[sb] = digest
	}
	return out, rows.Err()
}

// HandRunSpec returns the stored blueprint of a sandbox.
func (d *DB) HandRunSpec(ctx context.Context, sandbox string) (HandRun, error) {
	h := HandRun{Sandbox: sandbox}
	var spec string
	err := d.db.QueryRowContext(ctx, d.q(`SELECT digest, spec FROM hand_runs WHERE sandbox=?`), sandbox).Scan(&h.Digest, &spec)
	if errors.Is(err, sql.ErrNoRows) {
		return h, fmt.Errorf("hand run of sandbox %q: %w", sandbox, ErrNotFound)
	}
	h.Spec = []byte(spec)
	return h, err
}
