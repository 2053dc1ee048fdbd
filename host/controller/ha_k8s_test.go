//go:build kubernetes

package controller

import (
	"context"
	"net/http"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func (cl *cluster) holder(t *testing.T, ns string) string {
	t.Helper()
	var l coordinationv1.Lease
	err := cl.c.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "nemoclave-controller"}, &l)
	if apierrors.IsNotFound(err) || l.Spec.HolderIdentity == nil {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return *l.Spec.HolderIdentity
}

// Two daemon replicas elect one leader with a Lease. Killing the leader
// (SIGKILL to it and its plugins, as a node failure) hands the Lease to the
// other, which adopts the running sandbox instead of recreating it, and
// can delete it although its own state never recorded it. The killed
// replica, restarted on its old home, rejoins as a follower.
func TestHA_LeaderFailoverAdoptsSandboxes(t *testing.T) {
	cl := testCluster(t)
	ns := cl.namespace(t)
	ctx := context.Background()
	a := cl.startReplica(t, ns, "")
	b := cl.startReplica(t, ns, "")
	replicas := map[string]*replica{a.identity(): a, b.identity(): b}
	var leaderID string
	eventually(t, "a leader", func() bool { leaderID = cl.holder(t, ns); return replicas[leaderID] != nil })
	leader := replicas[leaderID]
	follower := a
	if leader == a {
		follower = b
	}
	// Every replica is ready and alive, leader or not: all serve the gateway.
	for _, r := range []*replica{a, b} {
		for _, path := range []string{"/healthz", "/readyz"} {
			if code := probe(r.health, path); code != http.StatusOK {
				t.Fatalf("%s on %s: %d", path, r.identity(), code)
			}
		}
	}

	if err := cl.c.Create(ctx, blueprintConfigMap(t, ns, "ha-blueprint", "crd-ha")); err != nil {
		t.Fatal(err)
	}
	if err := cl.c.Create(ctx, &AgentEnvironment{ObjectMeta: metav1.ObjectMeta{Name: "ha", Namespace: ns},
		Spec: AgentEnvironmentSpec{ConfigMapRef: &ConfigMapBlueprint{Name: "ha-blueprint"}}}); err != nil {
		t.Fatal(err)
	}
	got := cl.waitReady(t, ns, "ha")
	if got.Status.ReconciledBy != leaderID {
		t.Fatalf("status.reconciledBy = %q, want the Lease holder %q", got.Status.ReconciledBy, leaderID)
	}
	pod := cl.pod(t, ns, "crd-ha")
	if pod == nil {
		t.Fatal("no sandbox pod")
	}

	killed := time.Now()
	leader.kill()
	eventually(t, "the follower to take the Lease", func() bool { return cl.holder(t, ns) == follower.identity() })
	took := time.Since(killed)
	t.Logf("the follower took the Lease %.1fs after the leader was killed (lease duration 5s)", took.Seconds())
	if took > 15*time.Second {
		// Not a timing flake guard: with a 5 s Lease the takeover is
		// bounded by the lease duration plus one retry period.
		t.Errorf("takeover took %s, more than the 15 s the issue allows", took)
	}
	eventually(t, "the new leader to adopt the sandbox", func() bool {
		ae := cl.get(t, ns, "ha")
		c := meta.FindStatusCondition(ae.Status.Conditions, ConditionReady)
		return ae.Status.ReconciledBy == follower.identity() && c != nil && c.Status == metav1.ConditionTrue && c.Reason == ReasonAdopted
	})
	if p := cl.pod(t, ns, "crd-ha"); p == nil || p.UID != pod.UID {
		t.Fatalf("the new leader recreated the sandbox pod instead of adopting it (old UID %s, now %v)", pod.UID, p)
	}

	// The killed replica comes back on its home and follows.
	back := cl.startReplica(t, ns, leader.home)
	if h := cl.holder(t, ns); h != follower.identity() {
		t.Fatalf("after the old leader restarted the Lease is held by %q, want %q", h, follower.identity())
	}
	if code := probe(back.health, "/readyz"); code != http.StatusOK {
		t.Fatalf("restarted replica not ready: %d", code)
	}

	// The new leader deletes what the old one created.
	if err := cl.c.Delete(ctx, cl.get(t, ns, "ha")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the AgentEnvironment to be deleted", func() bool {
		var ae AgentEnvironment
		return apierrors.IsNotFound(cl.c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "ha"}, &ae))
	})
	if left := cl.managed(t, ns); len(left) != 0 {
		t.Fatalf("after delete by the new leader the namespace still holds %v", left)
	}
}
