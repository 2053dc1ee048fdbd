package state

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// With PostgreSQL, every write that another replica acts on — a held
// request mirrored, answered, failed or removed; a lifetime egress grant;
// a policy revision — sends a NOTIFY on notifyChannel in the same
// transaction as the write (so it is delivered when, and only if, the
// write commits), and each replica LISTENs on one dedicated connection
// (Listen). The payload names what changed; a listener re-reads the
// state, so a notification carries no data that could be lost.

// notifyChannel is the PostgreSQL channel of state changes.
const notifyChannel = "nemoclave_state"

// ListenerApplicationName is the application_name of the listening
// connection (pg_stat_activity shows it).
const ListenerApplicationName = "nemoclave-listen"

// What a notification says changed.
const (
	ChangePending  = "pending"  // pending_approvals: held, answered, failed, removed
	ChangeGrant    = "grant"    // egress_grants
	ChangeRevision = "revision" // policy_revisions
)

// execNotify runs a write written with ? placeholders and returns the
// rows it changed. With PostgreSQL the statement also notifies listeners
// of change when it changed a row: one statement, one transaction.
func (d *DB) execNotify(ctx context.Context, change, query string, args ...any) (int64, error) {
	if !d.postgres {
		res, err := d.db.ExecContext(ctx, query, args...)
		if err != nil {
			return 0, err
		}
		return res.RowsAffected()
	}
	rows, err := d.db.QueryContext(ctx, d.q(`WITH w AS (`+query+` RETURNING 1) SELECT pg_notify('`+notifyChannel+`', ?)::text FROM w`), append(args, change)...)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var n int64
	for rows.Next() {
		n++
	}
	return n, rows.Err()
}

// ListenEvent is what Listen reports: a change (Change set), or the
// listening connection coming up (Up, Err nil: whatever changed while it
// was down was not notified, so re-read the state) or going down (Err
// set; Listen reconnects with backoff).
type ListenEvent struct {
	Change string
	Up     bool
	Err    error
}

// listenPing is how long the listening connection waits for a
// notification before it checks that the server still answers (a
// connection dropped by the network sends no error). A variable for a
// test only.
var listenPing = 30 * time.Second

// listenPingTimeout bounds that check.
const listenPingTimeout = 15 * time.Second

// Listen follows the state's change notifications until ctx ends, calling
// on for each event (from one goroutine, in order). It holds one
// dedicated connection, named ListenerApplicationName, and reconnects
// with backoff (100 ms doubling to 10 s) when it is lost. Only a
// PostgreSQL state notifies: Listen fails at once for SQLite.
func (d *DB) Listen(ctx context.Context, on func(ListenEvent)) error {
	if !d.postgres {
		return errors.New("state: only a PostgreSQL state notifies changes")
	}
	cfg, err := pgx.ParseConfig(d.url)
	if err != nil {
		return fmt.Errorf("state database %s: %w", redactURL(d.url), err)
	}
	cfg.RuntimeParams["application_name"] = ListenerApplicationName
	const minBackoff, maxBackoff = 100 * time.Millisecond, 10 * time.Second
	backoff := minBackoff
	for ctx.Err() == nil {
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err == nil {
			if _, err = conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
				conn.Close(context.Background())
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			on(ListenEvent{Err: fmt.Errorf("listening for state changes on %s: %w (retrying in %s)", redactURL(d.url), err, backoff)})
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		backoff = minBackoff
		on(ListenEvent{Up: true})
		err = d.follow(ctx, conn, on)
		conn.Close(context.Background())
		if ctx.Err() != nil {
			break
		}
		on(ListenEvent{Err: fmt.Errorf("listening for state changes on %s: connection lost: %w (reconnecting)", redactURL(d.url), err)})
	}
	return ctx.Err()
}

// follow reports the notifications arriving on conn until it fails.
func (d *DB) follow(ctx context.Context, conn *pgx.Conn, on func(ListenEvent)) error {
	for {
		wctx, cancel := context.WithTimeout(ctx, listenPing)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			on(ListenEvent{Change: n.Payload})
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed():
			pctx, cancel := context.WithTimeout(ctx, listenPingTimeout)
			err = conn.Ping(pctx)
			cancel()
			if err != nil {
				return err
			}
		default:
			return err
		}
	}
}
