package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/nemoclave/nemoclave/gateway/egress"
	pb "github.com/nemoclave/nemoclave/host/api/daemonpb"
	"github.com/nemoclave/nemoclave/host/state"
)

// With shared state (PostgreSQL: the replicas of a daemon in a cluster)
// every replica serves every sandbox, so a request held for an operator
// on one replica must be visible, and answerable, on all. The replica
// holding the request (its egress gateway has the connection) mirrors
// its pending approvals into the state's pending_approvals table; any
// replica lists them and writes an operator's answer into the row; the
// holder applies the answer to the held connection and removes the row.
// Lifetime grants ("sandbox") go to egress_grants and every replica
// applies them to the sandboxes it serves, as it applies newer policy
// revisions (hot reloads, "persist" answers) stored by another replica.

// With PostgreSQL every such write notifies the other replicas in its
// transaction (state.Listen): each replica listens on one connection and
// syncs at once. The poll stays as the fallback: every
// sharedSyncInterval while the listening connection is down (it
// reconnects with backoff and re-reads the state when it is up again),
// every sharedPollWhileListening while it is up.

// sharedSyncInterval is how often a replica mirrors its held requests
// and picks up answers, grants and policy revisions from the state when
// it is not notified of changes.
const sharedSyncInterval = 500 * time.Millisecond

// sharedPollWhileListening is the fallback poll while changes are
// notified.
const sharedPollWhileListening = 5 * time.Second

// remoteAnswerWait bounds how long an answer given on this replica waits
// for the holding replica to apply it.
const remoteAnswerWait = 10 * time.Second

// failureKeep is how long a holder keeps an answer it could not apply,
// with the reason, for the answering replica to report it.
const failureKeep = time.Minute

// sharedFollow is what a replica knows of the shared state's
// notifications.
type sharedFollow struct {
	listening atomic.Bool  // the listening connection is up
	ups       atomic.Int64 // times it came up (tests)
	mu        sync.Mutex
	changed   chan struct{} // closed and replaced on every change
}

// changes returns a channel closed at the next notified change (or
// reconnection): take it before reading the state, then wait on it.
func (f *sharedFollow) changes() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.changed == nil {
		f.changed = make(chan struct{})
	}
	return f.changed
}

func (f *sharedFollow) signal() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.changed != nil {
		close(f.changed)
	}
	f.changed = make(chan struct{})
}

// pollInterval is how often to re-read the shared state now.
func (r *Runtime) pollInterval() time.Duration {
	if !r.shared.listening.Load() {
		return sharedSyncInterval
	}
	if r.opts.sharedPollListening > 0 {
		return r.opts.sharedPollListening
	}
	return sharedPollWhileListening
}

// startSharedSync starts the mirror when the state is shared.
func (r *Runtime) startSharedSync() {
	if !r.db.Shared() {
		return
	}
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	r.holder = host + "/" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	r.stopSync = func() {
		cancel()
		wg.Wait()
		// What this daemon held died with its connections.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = r.db.DeletePendingApprovalsOf(ctx, r.holder, time.Now().Add(-time.Minute))
	}
	// Requests held by daemons that died holding them are gone with
	// their connections.
	if err := r.db.DeletePendingApprovalsOf(ctx, r.holder, time.Now().Add(-time.Minute)); err != nil {
		r.log.Warn("shared approvals: removing expired requests", "err", err)
	}
	kick := make(chan struct{}, 1)
	poke := func() {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	wg.Add(1)
	if !r.opts.sharedNoListen {
		wg.Add(1)
		go r.followShared(ctx, &wg, poke)
	}
	go func() {
		defer wg.Done()
		every := r.pollInterval()
		t := time.NewTicker(every)
		defer t.Stop()
		events := r.egress.Approvals().Watch(ctx)
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-events:
				if !ok {
					events = r.egress.Approvals().Watch(ctx)
				}
			case <-kick:
			case <-t.C:
			}
			if err := r.syncShared(ctx); err != nil && ctx.Err() == nil {
				r.log.Warn("shared approvals: syncing with the state", "err", err)
			}
			if now := r.pollInterval(); now != every {
				every = now
				t.Reset(every)
			}
		}
	}()
}

// followShared listens for the shared state's notifications: each change,
// and each reconnection (changes meanwhile were not notified), syncs now
// and wakes whoever waits on the state.
func (r *Runtime) followShared(ctx context.Context, wg *sync.WaitGroup, poke func()) {
	defer wg.Done()
	down := false
	_ = r.db.Listen(ctx, func(e state.ListenEvent) {
		switch {
		case e.Up:
			if down {
				r.log.Info("shared state: listening for changes again; re-reading the state")
			}
			down = false
			r.shared.listening.Store(true)
			r.shared.ups.Add(1)
		case e.Err != nil:
			if !down {
				r.log.Warn("shared state: changes are not notified, polling every "+sharedSyncInterval.String(), "err", e.Err)
			}
			down = true
			r.shared.listening.Store(false)
		}
		// A change, or a reconnection (changes meanwhile were not
		// notified): sync now, and wake whoever waits on the state.
		poke()
		r.shared.signal()
	})
}

// syncShared mirrors this replica's held requests, applies answers given
// on other replicas, and applies stored grants and newer policy revisions
// to the sandboxes this replica serves.
func (r *Runtime) syncShared(ctx context.Context) error {
	local := r.egress.Approvals().List()
	rows, err := r.db.PendingApprovals(ctx, r.holder)
	if err != nil {
		return err
	}
	var errs []error
	now := time.Now()
	for _, row := range rows {
		if row.Failure != "" {
			// Kept for the answering replica to report; it deletes it.
			if row.Expires.Before(now) {
				errs = append(errs, r.db.DeletePendingApproval(ctx, row.ID))
			}
			continue
		}
		if row.Answer != "" {
			err := r.egress.Approvals().AnswerAs(ctx, row.ID, egress.Answer(row.Answer), row.Operator)
			if err != nil {
				// The replica where the operator answered reports it.
				reason := r.answerFailure(row, err)
				r.log.Warn("shared approvals: applying an answer from another replica", "id", row.ID, "err", reason)
				errs = append(errs, r.db.FailPendingApproval(ctx, row.ID, reason, now.Add(failureKeep)))
				continue
			}
			errs = append(errs, r.db.DeletePendingApproval(ctx, row.ID))
			continue
		}
		if !slices.ContainsFunc(local, func(a egress.Approval) bool { return a.ID == row.ID }) {
			errs = append(errs, r.db.DeletePendingApproval(ctx, row.ID)) // answered here, or expired
		}
	}
	// What is held now: not the answers just applied (mirroring the
	// earlier list would put them back as pending).
	for _, a := range r.egress.Approvals().List() {
		errs = append(errs, r.db.PutPendingApproval(ctx, state.PendingApproval{ID: a.ID, Holder: r.holder, Sandbox: a.Sandbox,
			Host: a.Host, Port: a.Port, Method: a.Method, Path: a.Path, Revision: a.Revision, Waiting: a.Waiting,
			Requested: a.Requested, Expires: a.Expires}))
	}

	// The sandboxes this replica's gateway serves (run or served here).
	names := r.egress.SandboxIDs()
	if len(names) == 0 {
		return errors.Join(errs...)
	}
	grants, err := r.db.Grants(ctx)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	latest, err := r.db.LatestRevisions(ctx)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, n := range names {
		for _, g := range grants[n] {
			host, port, err := net.SplitHostPort(g)
			if p, perr := strconv.Atoi(port); err == nil && perr == nil {
				r.egress.Grant(n, host, p)
			}
		}
		cur := r.egress.Policy(n)
		if cur == nil || latest[n] <= cur.Revision {
			continue
		}
		rev, err := r.db.LatestPolicy(ctx, n)
		if err != nil || rev.Revision <= cur.Revision {
			continue
		}
		if err := r.egress.SetPolicy(n, rev.Policy); err != nil {
			errs = append(errs, fmt.Errorf("policy revision %d of %s from the state: %w", rev.Revision, n, err))
		}
	}
	return errors.Join(errs...)
}

// answerFailure says why this replica, holding a request, could not
// apply the answer another replica wrote, and what to do.
func (r *Runtime) answerFailure(row state.PendingApproval, err error) string {
	target := net.JoinHostPort(row.Host, strconv.Itoa(row.Port))
	switch {
	case errors.Is(err, egress.ErrNoSuchApproval):
		next := "the sandbox asks again on its next request to " + target + ": answer that one"
		if egress.Answer(row.Answer) == egress.AnswerSandbox {
			next = "the grant for the sandbox's lifetime is stored and applies to its next requests to " + target
		}
		return fmt.Sprintf("replica %s no longer held the request when the answer arrived (it timed out or its client gave up), so nothing was let through; %s", r.holder, next)
	case egress.Answer(row.Answer) == egress.AnswerPersist:
		return fmt.Sprintf("replica %s let the request through and allows %s for the sandbox's lifetime, but could not store the new policy revision: %v; check the state database, then add %s to the blueprint's network policy (or approve its next request with --scope persist again)", r.holder, target, err, target)
	default:
		return fmt.Sprintf("replica %s could not apply the answer: %v", r.holder, err)
	}
}

// remotePending returns the requests other replicas hold, unanswered and
// not expired (none without shared state).
func (r *Runtime) remotePending(ctx context.Context) ([]state.PendingApproval, error) {
	if r.holder == "" {
		return nil, nil
	}
	rows, err := r.db.PendingApprovals(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("pending approvals of the other replicas: %w", err)
	}
	now := time.Now()
	out := rows[:0]
	for _, a := range rows {
		if a.Holder != r.holder && a.Answer == "" && a.Expires.After(now) {
			out = append(out, a)
		}
	}
	return out, nil
}

func pendingMessage(a state.PendingApproval) *pb.Approval {
	return &pb.Approval{Id: a.ID, Sandbox: a.Sandbox, Host: a.Host, Port: int32(a.Port), Method: a.Method, Path: a.Path,
		Revision: int32(a.Revision), Requested: timestamppb.New(a.Requested), Expires: timestamppb.New(a.Expires), Waiting: int32(a.Waiting)}
}

// answerRemote writes an operator's answer to a request another replica
// holds and waits until that replica applied it.
func (r *Runtime) answerRemote(ctx context.Context, a state.PendingApproval, ans egress.Answer, operator string) error {
	if err := r.db.AnswerPendingApproval(ctx, a.ID, string(ans), operator); err != nil {
		if errors.Is(err, state.ErrNotFound) {
			return fmt.Errorf("no pending approval %q: it was answered or timed out meanwhile (see `nemoclave approvals list`)", a.ID)
		}
		return err
	}
	if ans == egress.AnswerSandbox {
		if err := r.db.AddGrant(ctx, a.Sandbox, net.JoinHostPort(a.Host, strconv.Itoa(a.Port))); err != nil {
			return fmt.Errorf("approval %s was answered, but the grant for the other replicas was not stored: %w", a.ID, err)
		}
	}
	deadline := time.Now().Add(remoteAnswerWait)
	for {
		changed := r.shared.changes()
		rows, err := r.db.PendingApprovals(ctx, a.Holder)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(rows, func(p state.PendingApproval) bool { return p.ID == a.ID })
		if i < 0 {
			return nil
		}
		if f := rows[i].Failure; f != "" {
			_ = r.db.DeletePendingApproval(ctx, a.ID) // reported here
			return fmt.Errorf("approval %s (answer %q): %s", a.ID, ans, f)
		}
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("approval %s: the answer is stored, but replica %s, which holds the request, has not applied it within %s; check that it runs (it applies the answer when it does, unless the request timed out)", a.ID, a.Holder, remoteAnswerWait)
		}
		// Notified when the holder applies it; else poll.
		wait := 100 * time.Millisecond
		if r.shared.listening.Load() {
			wait = r.pollInterval()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		case <-time.After(min(wait, left)):
		}
	}
}
