package runtime

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/gateway/inference"
	"github.com/nemoclave/nemoclave/host/daemon"
	"github.com/nemoclave/nemoclave/policy"
)

// The runtime answers every read of the daemon's API with its typed
// messages: a detached run's sandbox, its policy in the three views, a
// policy change and its revision, pending approvals, inference status
// with recorded usage, and the delete.
func TestTypedAnswersOfADetachedRun(t *testing.T) {
	t.Parallel()
	r, ctx := upRuntime(t)
	bp := writeBlueprint(t, withModel(oneAgent))
	if err := r.Run(ctx, daemon.RunRequest{Path: bp, Detach: true}, &events{}); err != nil {
		t.Fatal(err)
	}

	list, err := r.ListSandboxes(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("list: %v %v", list, err)
	}
	sb := list[0]
	if sb.Name != "box" || sb.Agent != "a" || sb.Driver != "local" || sb.State != "running" || sb.Policy != "p" || sb.PolicyRevision < 1 ||
		sb.ExitCode != nil || sb.CreatedAt.AsTime().IsZero() || time.Since(sb.CreatedAt.AsTime()) > time.Hour {
		t.Fatalf("sandbox: %v", sb)
	}
	if _, err := r.GetSandbox(ctx, "nope"); err == nil || !strings.Contains(err.Error(), "nemoclave sandbox list") {
		t.Errorf("unknown sandbox: %v", err)
	}

	eff := getPolicy(t, r, "effective")
	if eff.Name != "p" || eff.UnknownHosts != "deny" || int32(eff.Revision) != sb.PolicyRevision {
		t.Fatalf("effective policy: %+v", eff)
	}
	if base := getPolicy(t, r, "base"); base.Name != "p" || base.UnknownHosts != "deny" {
		t.Fatalf("base policy: %+v", base)
	}
	if _, err := r.GetPolicy(ctx, "box", "diff"); err == nil || !strings.Contains(err.Error(), "use effective, full or base") {
		t.Errorf("unknown view: %v", err)
	}

	// A network change is a new revision; a filesystem change is refused.
	next := *eff
	next.UnknownHosts = "ask"
	doc, _ := json.Marshal(next)
	set, err := r.SetPolicy(ctx, "box", doc, nil)
	if err != nil || set.Sandbox != "box" || set.Revision != int32(eff.Revision)+1 || set.Note == "" {
		t.Fatalf("set policy: %v %v", set, err)
	}
	if now := getPolicy(t, r, ""); now.UnknownHosts != "ask" || now.Revision != eff.Revision+1 {
		t.Fatalf("after set: %+v", now)
	}
	wider := next
	wider.Filesystem.ReadWrite = append(append([]string(nil), wider.Filesystem.ReadWrite...), "/etc")
	doc, _ = json.Marshal(wider)
	if _, err := r.SetPolicy(ctx, "box", doc, nil); err == nil || !strings.Contains(err.Error(), "fixed when a sandbox starts") {
		t.Errorf("filesystem change: %v", err)
	}
	full, err := r.GetPolicy(ctx, "box", "full")
	if err != nil || full.View != "full" || full.Base == nil || len(full.Revisions) != 2 || full.Revisions[1].Source != "policy set" || full.Revisions[1].At == nil {
		t.Fatalf("full view: %v %v", full, err)
	}
	if base, err := daemon.PolicyFromStruct(full.Base); err != nil || base.UnknownHosts != "deny" {
		t.Fatalf("full view's base: %+v %v", base, err)
	}

	if apprs, err := r.ListApprovals(ctx, "box"); err != nil || apprs == nil || len(apprs) != 0 {
		t.Errorf("approvals: %v %v", apprs, err)
	}
	if _, err := r.AnswerApproval(ctx, "ap-nope", true, "once"); err == nil || !strings.Contains(err.Error(), "no pending approval") {
		t.Errorf("answer to an unknown approval: %v", err)
	}

	// Usage recorded by an earlier sandbox is in the daemon's answer; the
	// CLI does not open usage.db.
	if err := r.usage.Add(ctx, []inference.UsageRecord{
		{Time: time.Now(), Sandbox: "earlier", Alias: "smart", Provider: "nim", Model: "m", Operation: "chat", InputTokens: 100, OutputTokens: 20, CostUSD: 0.5},
		{Time: time.Now(), Sandbox: "earlier", Alias: "smart", Provider: "nim", Model: "m", Operation: "chat", InputTokens: 1, OutputTokens: 2},
	}); err != nil {
		t.Fatal(err)
	}
	st, err := r.InferenceStatus(ctx, "")
	if err != nil || len(st.Live) != 1 || st.Live[0].Sandbox != "box" || st.Live[0].Default != "m" || st.Live[0].Usage == nil || st.Default == nil {
		t.Fatalf("inference status: %v %v", st, err)
	}
	var earlier bool
	for _, u := range st.UsageToday {
		if u.Sandbox == "earlier" {
			earlier = u.Requests == 2 && u.InputTokens == 101 && u.OutputTokens == 22 && u.CostUsd == 0.5
		}
	}
	if !earlier || len(st.UsageMonth) < len(st.UsageToday) || !strings.HasSuffix(st.UsageFile, inference.UsageFileName) {
		t.Fatalf("usage: today %v month %v file %s", st.UsageToday, st.UsageMonth, st.UsageFile)
	}
	if st, err := r.InferenceStatus(ctx, "box"); err != nil || len(st.Live) != 1 || len(st.UsageToday) != 0 || st.UsageToday == nil {
		t.Fatalf("one sandbox's status holds only its usage: %v %v", st, err)
	}
	if _, err := r.InferenceStatus(ctx, "earlier"); err == nil || !strings.Contains(err.Error(), "not running under this daemon") {
		t.Errorf("status of a sandbox that does not run: %v", err)
	}

	del, err := r.DeleteSandbox(ctx, "box")
	if err != nil || del.Deleted != "box" {
		t.Fatalf("delete: %v %v", del, err)
	}
	if list, err := r.ListSandboxes(ctx); err != nil || list == nil || len(list) != 0 {
		t.Errorf("after delete: %v %v", list, err)
	}
	if st, err := r.InferenceStatus(ctx, ""); err != nil || len(st.Live) != 0 || len(st.Notes) == 0 {
		t.Errorf("status with no sandbox running: %v %v", st, err)
	}
}

func getPolicy(t *testing.T, r *Runtime, view string) *policy.Policy {
	t.Helper()
	resp, err := r.GetPolicy(context.Background(), "box", view)
	if err != nil {
		t.Fatalf("policy view %q: %v", view, err)
	}
	p, err := daemon.PolicyFromStruct(resp.Policy)
	if err != nil || p == nil {
		t.Fatalf("policy view %q: %v %v", view, p, err)
	}
	return p
}
