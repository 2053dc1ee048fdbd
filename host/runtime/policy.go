package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"reflect"
	"slices"
	"strconv"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/nemoclave/nemoclave/blueprints"
	"github.com/nemoclave/nemoclave/gateway/egress"
	pb "github.com/nemoclave/nemoclave/host/api/daemonpb"
	"github.com/nemoclave/nemoclave/host/daemon"
	"github.com/nemoclave/nemoclave/host/state"
	"github.com/nemoclave/nemoclave/policy"
)

var _ daemon.Backend = (*Runtime)(nil)

// effective is the live policy when the sandbox runs here, else the last
// recorded revision.
func (r *Runtime) effective(ctx context.Context, name string) (*policy.Policy, error) {
	if p := r.egress.Policy(name); p != nil {
		return p, nil
	}
	rev, err := r.db.LatestPolicy(ctx, name)
	if err != nil {
		return nil, err
	}
	return rev.Policy, nil
}

// GetPolicy answers `policy get`: the effective policy, the base one (as
// the blueprint declared it), or the full view with where each rule came
// from, every revision, the operator answers and the lifetime grants.
func (r *Runtime) GetPolicy(ctx context.Context, name, view string) (*pb.GetPolicyResponse, error) {
	if _, err := r.record(ctx, name); err != nil {
		return nil, err
	}
	revs, err := r.db.Revisions(ctx, name)
	if err != nil {
		return nil, err
	}
	if len(revs) == 0 {
		return nil, fmt.Errorf("sandbox %s has no recorded policy", name)
	}
	out := &pb.GetPolicyResponse{Sandbox: name, View: view}
	var p *policy.Policy
	switch view {
	case "base":
		p = revs[0].Policy
	case "", "effective", "full":
		if out.View == "" {
			out.View = "effective"
		}
		if p, err = r.effective(ctx, name); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unknown policy view %q: use effective, full or base", view)
	}
	if out.Policy, err = daemon.PolicyStruct(p); err != nil {
		return nil, err
	}
	if view != "full" {
		return out, nil
	}
	if out.Base, err = daemon.PolicyStruct(revs[0].Policy); err != nil {
		return nil, err
	}
	for _, rv := range revs {
		out.Revisions = append(out.Revisions, &pb.PolicyRevision{Revision: int32(rv.Revision), Source: rv.Source, Hosts: rv.Policy.Hosts(), At: timestamppb.New(rv.CreatedAt)})
	}
	answers, err := r.db.Approvals(ctx, name)
	if err != nil {
		return nil, err
	}
	for _, a := range answers {
		out.Approvals = append(out.Approvals, answerMessage(a))
	}
	out.Grants = r.egress.Grants(name)
	return out, nil
}

func answerMessage(a state.Approval) *pb.ApprovalAnswer {
	return &pb.ApprovalAnswer{Id: a.ID, Sandbox: a.Sandbox, Host: a.Host, Port: int32(a.Port), Decision: a.Decision,
		Scope: a.Scope, Operator: a.Operator, DecidedAt: timestamppb.New(a.DecidedAt)}
}

// SetPolicy replaces a running sandbox's network policy and/or adds presets.
// Only the network part changes at runtime (new connections; tunnels to
// hosts no longer allowed are closed): filesystem, Landlock and process
// limits were applied when the sandbox started and cannot be widened from
// outside, so a change to them is refused with that explanation.
func (r *Runtime) SetPolicy(ctx context.Context, name string, policyJSON []byte, addPresets []string) (*pb.SetPolicyResponse, error) {
	if _, err := r.record(ctx, name); err != nil {
		return nil, err
	}
	cur := r.egress.Policy(name)
	if cur == nil {
		return nil, fmt.Errorf("sandbox %s is not running under this daemon; policy changes apply to running sandboxes", name)
	}
	next := cur.Clone()
	source := "policy set"
	if len(policyJSON) > 0 {
		var in policy.Policy
		dec := json.NewDecoder(bytes.NewReader(policyJSON))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			return nil, fmt.Errorf("policy file: %w (the format is `nemoclave policy get %s -o json`)", err, name)
		}
		if !reflect.DeepEqual(in.Filesystem, cur.Filesystem) || in.Landlock != cur.Landlock || in.Process != cur.Process {
			return nil, errors.New("the new policy changes filesystem, landlock or process settings; those are fixed when a sandbox starts — change the blueprint and run a new sandbox. Only network rules and unknown_hosts can change at runtime")
		}
		next.Network, next.UnknownHosts, next.Presets = in.Network, in.UnknownHosts, in.Presets
	}
	if len(addPresets) > 0 {
		source = "add-preset"
		l := blueprints.NewLoader(blueprints.Options{})
		// The user's preset directory is optional: a fresh home has none.
		all, diags := l.Presets(presetDirs(r.opts.Home))
		if diags.HasErrors() {
			return nil, fmt.Errorf("presets: %s", diags.Error())
		}
		byName := map[string]*blueprints.Preset{}
		for _, p := range all {
			byName[p.Name] = p
		}
		for _, name := range addPresets {
			p := byName[name]
			if p == nil {
				return nil, fmt.Errorf("unknown preset %q (builtin presets and $NEMOCLAVE_HOME/presets/*.hcl are available; see docs/policies.md)", name)
			}
			if slices.Contains(next.Presets, name) {
				continue
			}
			next.Presets = append(next.Presets, name)
			for _, rule := range p.Network {
				rule.Source = "preset:" + name
				next.Network = append(next.Network, rule)
			}
		}
	}
	next.Revision = cur.Revision + 1
	if err := next.Validate(); err != nil {
		return nil, fmt.Errorf("the new policy is invalid: %w", err)
	}
	// Stored first, then enforced (R7): a revision the store could not
	// keep (a full disk) never takes effect, so what runs is always what
	// `policy get` and the next daemon will find.
	if err := r.db.AddRevision(ctx, name, source, next); err != nil {
		return nil, fmt.Errorf("policy revision %d not applied: it could not be stored (%w); revision %d stays in force — free space under $NEMOCLAVE_HOME and retry", next.Revision, err, cur.Revision)
	}
	if err := r.egress.SetPolicy(name, next); err != nil {
		return nil, fmt.Errorf("policy revision %d was stored but not applied: %w", next.Revision, err)
	}
	return &pb.SetPolicyResponse{Sandbox: name, Revision: int32(next.Revision), Hosts: next.Hosts(),
		Note: "network changes apply to new connections; open tunnels to hosts no longer allowed were closed"}, nil
}

// ListApprovals lists the pending egress approvals of sandbox ("": all):
// those this daemon holds and, with shared state, those every other
// replica holds.
func (r *Runtime) ListApprovals(ctx context.Context, sandbox string) ([]*pb.Approval, error) {
	out := []*pb.Approval{}
	for _, a := range r.egress.Approvals().List() {
		if sandbox == "" || a.Sandbox == sandbox {
			out = append(out, &pb.Approval{Id: a.ID, Sandbox: a.Sandbox, Host: a.Host, Port: int32(a.Port), Method: a.Method, Path: a.Path,
				Revision: int32(a.Revision), Requested: timestamppb.New(a.Requested), Expires: timestamppb.New(a.Expires), Waiting: int32(a.Waiting)})
		}
	}
	remote, err := r.remotePending(ctx)
	if err != nil {
		return out, err // this replica's own; Watch shows them meanwhile
	}
	for _, a := range remote {
		if sandbox == "" || a.Sandbox == sandbox {
			out = append(out, pendingMessage(a))
		}
	}
	if len(remote) > 0 {
		slices.SortStableFunc(out, func(a, b *pb.Approval) int { return a.Requested.AsTime().Compare(b.Requested.AsTime()) })
	}
	return out, nil
}

// WatchApprovals sends the pending list now and after every change (with
// shared state, changes on other replicas are notified, or polled).
func (r *Runtime) WatchApprovals(ctx context.Context, sandbox string, send func([]*pb.Approval) error) error {
	ch := r.egress.Approvals().Watch(ctx)
	var last []*pb.Approval
	first := true
	// With shared state, other replicas' changes are notified (or,
	// without notifications, polled).
	var poll *time.Timer
	if r.holder != "" {
		poll = time.NewTimer(r.pollInterval())
		defer poll.Stop()
	}
	for {
		var changed <-chan struct{}
		var tick <-chan time.Time
		if poll != nil {
			changed = r.shared.changes()
			poll.Reset(r.pollInterval())
			tick = poll.C
		}
		list, _ := r.ListApprovals(ctx, sandbox)
		if first || !sameApprovals(list, last) {
			if err := send(list); err != nil {
				return err
			}
			last, first = list, false
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick:
		case <-changed:
		case _, ok := <-ch:
			if !ok {
				return nil
			}
		}
	}
}

func sameApprovals(a, b []*pb.Approval) bool {
	return slices.EqualFunc(a, b, func(x, y *pb.Approval) bool { return x.Id == y.Id && x.Waiting == y.Waiting })
}

// AnswerApproval answers a pending approval and records the answer.
func (r *Runtime) AnswerApproval(ctx context.Context, id string, allow bool, scope string) (*pb.ApprovalAnswer, error) {
	var pending *egress.Approval
	for _, a := range r.egress.Approvals().List() {
		if a.ID == id {
			a := a
			pending = &a
		}
	}
	var remote *state.PendingApproval
	if pending == nil {
		rows, err := r.remotePending(ctx)
		if err != nil {
			return nil, err
		}
		for _, a := range rows {
			if a.ID == id {
				a := a
				remote = &a
				pending = &egress.Approval{ID: a.ID, Sandbox: a.Sandbox, Host: a.Host, Port: a.Port}
			}
		}
	}
	if pending == nil {
		return nil, fmt.Errorf("no pending approval %q (it may have timed out; see `nemoclave approvals list`)", id)
	}
	ans := egress.AnswerDeny
	if allow {
		switch scope {
		case "", "once":
			ans, scope = egress.AnswerOnce, "once"
		case "sandbox":
			ans = egress.AnswerSandbox
		case "persist":
			ans = egress.AnswerPersist
		default:
			return nil, fmt.Errorf("unknown scope %q: use once, sandbox or persist", scope)
		}
	} else {
		scope = "once"
	}
	operator := ""
	if c := daemon.CallerFrom(ctx); c != nil {
		operator = c.Subject
	}
	if remote != nil {
		// Another replica holds the request: it applies the answer.
		if err := r.answerRemote(ctx, *remote, ans, operator); err != nil {
			return nil, err
		}
	} else {
		if err := r.egress.Approvals().AnswerAs(ctx, id, ans, operator); err != nil {
			return nil, err
		}
		if r.holder != "" {
			// Gone from every replica's list at once, not at the next sync.
			_ = r.db.DeletePendingApproval(ctx, id)
		}
		if ans == egress.AnswerSandbox && r.holder != "" {
			// The other replicas serving the sandbox allow it too.
			if err := r.db.AddGrant(ctx, pending.Sandbox, net.JoinHostPort(pending.Host, strconv.Itoa(pending.Port))); err != nil {
				return nil, fmt.Errorf("approval %s applies on this replica, but the grant for the other replicas was not stored: %w", id, err)
			}
		}
	}
	decision := "deny"
	if allow {
		decision = "allow"
	}
	rec := state.Approval{Sandbox: pending.Sandbox, Host: pending.Host, Port: pending.Port, Decision: decision, Scope: scope, Operator: operator,
		DecidedAt: time.Now().UTC()}
	recID, err := r.db.AddApproval(ctx, rec)
	if err != nil {
		return nil, err
	}
	rec.ID = recID
	return answerMessage(rec), nil
}
