package egress

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/nemoclave/nemoclave/policy"
)

// Answer is an operator's decision on a held request.
type Answer string

const (
	// AnswerDeny refuses the held request (403).
	AnswerDeny Answer = "deny"
	// AnswerOnce lets the held request (and any identical one waiting with
	// it) through; the next one asks again.
	AnswerOnce Answer = "once"
	// AnswerSandbox allows host:port for the rest of the sandbox's life.
	AnswerSandbox Answer = "sandbox"
	// AnswerPersist adds host:port to the policy as a new revision, handed
	// to Config.OnPersist so the control plane stores it.
	AnswerPersist Answer = "persist"
)

// Approval is a request held for an operator.
type Approval struct {
	ID        string    `json:"id"`
	Sandbox   string    `json:"sandbox"`
	Host      string    `json:"host"`
	Port      int       `json:"port"`
	Method    string    `json:"method,omitempty"`
	Path      string    `json:"path,omitempty"`
	Revision  int       `json:"revision"`
	Requested time.Time `json:"requested"`
	Expires   time.Time `json:"expires"`
	// Waiting counts the connections held on this approval.
	Waiting int `json:"waiting"`
}

// ApprovalEvent is published to watchers when a request is held
// ("pending") and when it is answered or expires ("resolved").
type ApprovalEvent struct {
	Type     string   `json:"type"`
	Approval Approval `json:"approval"`
	Answer   Answer   `json:"answer,omitempty"` // for resolved: deny on timeout
	Reason   string   `json:"reason,omitempty"`
}

// Approvals is the queue of requests held under unknown_hosts = "ask". The
// CLI and TUI list, watch and answer it.
type Approvals struct {
	p *Proxy

	mu      sync.Mutex
	pending map[string]*held // by id
	byKey   map[string]*held // sandbox + host:port
	buckets map[string]*bucket
	subs    map[chan ApprovalEvent]struct{}
}

type held struct {
	a      Approval
	done   chan struct{}
	answer Answer
	reason string
}

// bucket is a token bucket limiting how fast one sandbox raises approvals.
type bucket struct {
	tokens float64
	last   time.Time
}

func newApprovals(p *Proxy) *Approvals {
	return &Approvals{p: p, pending: map[string]*held{}, byKey: map[string]*held{},
		buckets: map[string]*bucket{}, subs: map[chan ApprovalEvent]struct{}{}}
}

// List returns the pending approvals, oldest first.
func (a *Approvals) List() []Approval {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]Approval, 0, len(a.pending))
	for _, h := range a.pending {
		out = append(out, h.a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Requested.Before(out[j].Requested) })
	return out
}

// Watch streams approval events until ctx ends. A watcher that falls 64
// events behind is dropped (its channel closes); it should call List and
// watch again. Events already pending are not replayed: call List first.
func (a *Approvals) Watch(ctx context.Context) <-chan ApprovalEvent {
	ch := make(chan ApprovalEvent, 64)
	a.mu.Lock()
	a.subs[ch] = struct{}{}
	a.mu.Unlock()
	context.AfterFunc(ctx, func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		if _, ok := a.subs[ch]; ok {
			delete(a.subs, ch)
			close(ch)
		}
	})
	return ch
}

// publish must be called with a.mu held.
func (a *Approvals) publish(e ApprovalEvent) {
	for ch := range a.subs {
		select {
		case ch <- e:
		default:
			delete(a.subs, ch)
			close(ch)
		}
	}
}

// ErrNoSuchApproval is returned by Answer for an unknown or expired id.
var ErrNoSuchApproval = errors.New("no such pending approval")

// Answer resolves a pending approval. For AnswerPersist the new revision is
// in force before Answer returns; an error from Config.OnPersist is
// returned, and the grant then lasts only for the sandbox's lifetime.
func (a *Approvals) Answer(ctx context.Context, id string, ans Answer) error {
	return a.AnswerAs(ctx, id, ans, "")
}

// AnswerAs is Answer by a named operator (the daemon's caller, e.g.
// "oidc:alice@example.com" or "local:1000"), recorded in the audit event.
func (a *Approvals) AnswerAs(ctx context.Context, id string, ans Answer, operator string) error {
	switch ans {
	case AnswerDeny, AnswerOnce, AnswerSandbox, AnswerPersist:
	default:
		return fmt.Errorf("egress: answer %q: use deny, once, sandbox or persist", ans)
	}
	a.mu.Lock()
	h, ok := a.pending[id]
	if ok {
		a.remove(h)
	}
	a.mu.Unlock()
	if !ok {
		return fmt.Errorf("egress: approval %s: %w (it may have expired; list pending approvals again)", id, ErrNoSuchApproval)
	}
	t := Target{Host: h.a.Host, Port: h.a.Port}
	var persistErr error
	switch ans {
	case AnswerSandbox:
		a.p.grant(h.a.Sandbox, t)
	case AnswerPersist:
		persistErr = a.p.persistGrant(ctx, h.a.Sandbox, t)
		if persistErr != nil {
			a.p.grant(h.a.Sandbox, t)
		}
	}
	reason := "operator answered " + string(ans)
	if operator != "" {
		reason = "operator " + operator + " answered " + string(ans)
	}
	if persistErr != nil {
		reason += " (not persisted: " + persistErr.Error() + ")"
	}
	a.resolveBy(h, ans, reason, operator)
	return persistErr
}

func (a *Approvals) resolve(h *held, ans Answer, reason string) { a.resolveBy(h, ans, reason, "") }

func (a *Approvals) resolveBy(h *held, ans Answer, reason, operator string) {
	h.answer, h.reason = ans, reason
	close(h.done)
	a.mu.Lock()
	a.publish(ApprovalEvent{Type: "resolved", Approval: h.a, Answer: ans, Reason: reason})
	a.mu.Unlock()
	a.p.record(Event{Sandbox: h.a.Sandbox, Kind: "approval", Host: h.a.Host, Port: h.a.Port,
		Method: h.a.Method, Path: h.a.Path, Revision: h.a.Revision, Decision: string(ans), Reason: reason,
		Operator: operator, Approval: h.a.ID})
}

// remove must be called with a.mu held.
func (a *Approvals) remove(h *held) {
	delete(a.pending, h.a.ID)
	delete(a.byKey, h.a.Sandbox+"\x00"+Target{Host: h.a.Host, Port: h.a.Port}.String())
	a.p.metrics.pending.WithLabelValues(h.a.Sandbox).Dec()
}

// wait holds a request to an unknown host until an operator answers, the
// approval times out, or ctx ends. It returns the answer (AnswerDeny for
// every failure) and a reason for the audit log and the 403 body.
func (a *Approvals) wait(ctx context.Context, sb *sandbox, t Target, method, path string) (Answer, string) {
	key := sb.id + "\x00" + t.String()
	a.mu.Lock()
	h, ok := a.byKey[key]
	if !ok {
		if reason := a.admit(sb.id); reason != "" {
			a.mu.Unlock()
			return AnswerDeny, reason
		}
		now := time.Now().UTC()
		rev := 0
		if pol := sb.policy(); pol != nil {
			rev = pol.Revision
		}
		h = &held{done: make(chan struct{}), a: Approval{
			ID: newID(), Sandbox: sb.id, Host: t.Host, Port: t.Port, Method: method, Path: path,
			Revision: rev, Requested: now, Expires: now.Add(a.p.cfg.ApprovalTimeout),
		}}
		a.pending[h.a.ID], a.byKey[key] = h, h
		a.p.metrics.pending.WithLabelValues(sb.id).Inc()
		a.p.record(Event{Sandbox: sb.id, Kind: "approval", Host: t.Host, Port: t.Port, Method: method,
			Path: path, Revision: rev, Decision: "ask", Reason: "held for operator approval " + h.a.ID, Approval: h.a.ID})
	}
	h.a.Waiting++
	a.publish(ApprovalEvent{Type: "pending", Approval: h.a})
	a.mu.Unlock()

	timer := time.NewTimer(time.Until(h.a.Expires))
	defer timer.Stop()
	select {
	case <-h.done:
	case <-timer.C:
		a.expire(h, "no operator answered within "+a.p.cfg.ApprovalTimeout.String())
		<-h.done
	case <-ctx.Done():
		return AnswerDeny, "the gateway is shutting down"
	}
	if h.answer == AnswerDeny {
		return AnswerDeny, "host is not in the network policy and the operator did not approve it (" + h.reason + ")"
	}
	return h.answer, h.reason
}

// expire resolves h as denied if nobody answered it meanwhile.
func (a *Approvals) expire(h *held, reason string) {
	a.mu.Lock()
	_, still := a.pending[h.a.ID]
	if still {
		a.remove(h)
	}
	a.mu.Unlock()
	if still {
		a.resolve(h, AnswerDeny, reason)
	}
}

// admit applies the per-sandbox limits; must be called with a.mu held.
func (a *Approvals) admit(sandboxID string) string {
	n := 0
	for _, h := range a.pending {
		if h.a.Sandbox == sandboxID {
			n++
		}
	}
	if n >= a.p.cfg.MaxPendingPerSandbox {
		return fmt.Sprintf("the sandbox already has %d requests waiting for approval; wait for the operator to answer them", n)
	}
	b := a.buckets[sandboxID]
	now := time.Now()
	if b == nil {
		b = &bucket{tokens: float64(a.p.cfg.ApprovalBurst), last: now}
		a.buckets[sandboxID] = b
	}
	b.tokens = min(float64(a.p.cfg.ApprovalBurst), b.tokens+now.Sub(b.last).Seconds()/a.p.cfg.ApprovalRefill.Seconds())
	b.last = now
	if b.tokens < 1 {
		return "too many approval requests from this sandbox; try again later"
	}
	b.tokens--
	return ""
}

// dropSandbox denies everything a removed sandbox was waiting for.
func (a *Approvals) dropSandbox(id string) {
	a.mu.Lock()
	var hs []*held
	for _, h := range a.pending {
		if h.a.Sandbox == id {
			a.remove(h)
			hs = append(hs, h)
		}
	}
	delete(a.buckets, id)
	a.mu.Unlock()
	for _, h := range hs {
		a.resolve(h, AnswerDeny, "sandbox removed")
	}
}

func newID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Grant allows host:port for the rest of a sandbox's life in this gateway,
// as an operator's AnswerSandbox does: the daemon applies grants another
// replica's operator made (they are kept in the shared state).
func (p *Proxy) Grant(sandboxID, host string, port int) {
	p.grant(sandboxID, Target{Host: host, Port: port})
}

// grant allows t for the rest of the sandbox's life.
func (p *Proxy) grant(sandboxID string, t Target) {
	sb := p.sandbox(sandboxID)
	sb.mu.Lock()
	sb.grants[t.String()] = true
	sb.mu.Unlock()
}

// persistGrant applies a new revision that allows t and hands it to
// Config.OnPersist.
func (p *Proxy) persistGrant(ctx context.Context, sandboxID string, t Target) error {
	sb := p.sandbox(sandboxID)
	cur := sb.policy()
	if cur == nil {
		return fmt.Errorf("egress: sandbox %s has no policy to extend", sandboxID)
	}
	next := cur.Clone()
	next.Revision = cur.Revision + 1
	next.Network = append(next.Network, policy.NetworkRule{
		Name: "approval-" + t.Host, Source: "approval",
		Endpoints: []policy.Endpoint{{Host: t.Host, Ports: []int{t.Port}}},
	})
	if err := p.setPolicy(sandboxID, next, "approval"); err != nil {
		return err
	}
	if p.cfg.OnPersist == nil {
		return errors.New("egress: no Config.OnPersist to store the new revision; it lasts until the gateway restarts")
	}
	if err := p.cfg.OnPersist(ctx, sandboxID, next.Clone()); err != nil {
		return fmt.Errorf("egress: storing policy revision %d for sandbox %s: %w", next.Revision, sandboxID, err)
	}
	return nil
}
