package egress

import (
	"context"
	"strconv"
	"testing"

	"github.com/nemoclave/nemoclave/policy"
)

// TestOIDC_ApprovalAuditNamesOperator: an answer given through the
// daemon's remote API carries the signed-in operator into the egress audit
// record of the approval (SECURITY-TESTS R9: approvals with their id and
// operator).
func TestOIDC_ApprovalAuditNamesOperator(t *testing.T) {
	t.Parallel()
	_, port := tlsUpstream(t, echoHandler, "a.example")
	e := newEnv(t, map[string]string{"a.example": "127.0.0.1"})
	addr := e.serve(t, "sb", pol(1, policy.UnknownAsk, ep("api.example.com", 443)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := e.p.Approvals().Watch(ctx)
	a, done := heldConnect(t, e, addr, "a.example:"+strconv.Itoa(port), events)
	if err := e.p.Approvals().AnswerAs(ctx, a.ID, AnswerOnce, "oidc:otto@example.com"); err != nil {
		t.Fatal(err)
	}
	if r := <-done; r.StatusCode != 200 {
		t.Fatalf("approved request: %d", r.StatusCode)
	}
	e.waitEvent(t, "approval audit naming the operator", func(ev Event) bool {
		return ev.Kind == "approval" && ev.Decision == "once" && ev.Operator == "oidc:otto@example.com" &&
			ev.Approval == a.ID && ev.Reason == "operator oidc:otto@example.com answered once"
	})
}
