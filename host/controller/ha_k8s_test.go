//go:build kubernetes

package controller

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
)

// fakePod is a sandbox pod as the gateway sees it, without a kubelet: the
// token the kubelet would project into it (for the sandbox's service
// account, audience nemoclave-gateway, bound to the pod), and its
// supervisor's way to the gateway: a connection to a replica's Front that
// starts with the preamble naming the listener and carrying the token.
type fakePod struct {
	token string
}

func (cl *cluster) fakePod(t *testing.T, pod *corev1.Pod) *fakePod {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", cl.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := cs.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(context.Background(), pod.Spec.ServiceAccountName, &authnv1.TokenRequest{
		Spec: authnv1.TokenRequestSpec{Audiences: []string{"nemoclave-gateway"}, ExpirationSeconds: ptr.To(int64(3600)),
			BoundObjectRef: &authnv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for %s: %v", pod.Spec.ServiceAccountName, err)
	}
	return &fakePod{token: tr.Status.Token}
}

// ask sends the agent's first question to the inference endpoint through
// replica r's Front and returns the status and body ("" and the error
// when the replica closed the connection: it does not serve the pod).
func (p *fakePod) ask(r *replica) (int, string, error) {
	c, err := net.DialTimeout("tcp", r.front, 5*time.Second)
	if err != nil {
		return 0, "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := fmt.Fprintf(c, "NEMOCLAVE-SANDBOX/1 inference %s\n", p.token); err != nil {
		return 0, "", err
	}
	body := `{"model":"default","messages":[{"role":"user","content":"What files are in my workspace?"}]}`
	req, _ := http.NewRequest(http.MethodPost, "http://inference.nemoclave/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if err := req.Write(c); err != nil {
		return 0, "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// answers waits until replica r answers the pod's inference request with
// the model's reply (the replayed tool call).
func (p *fakePod) answers(t *testing.T, r *replica, when string) {
	t.Helper()
	eventually(t, r.identity()+" to answer the sandbox pod's inference request "+when, func() bool {
		code, body, _ := p.ask(r)
		return code == http.StatusOK && strings.Contains(body, "list_files")
	})
}

func (cl *cluster) waitAdopted(t *testing.T, ns, name, by string) {
	t.Helper()
	eventually(t, by+" to adopt the sandboxes of "+name, func() bool {
		ae := cl.get(t, ns, name)
		c := meta.FindStatusCondition(ae.Status.Conditions, ConditionReady)
		return ae.Status.ReconciledBy == by && c != nil && c.Status == metav1.ConditionTrue && c.Reason == ReasonAdopted
	})
}

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

// Two daemon replicas elect one leader with a Lease. A graceful stop of
// the leader (SIGTERM, as in a rolling update) hands the Lease over at once
// and leaves the sandbox pod it created running; the other replica adopts
// it instead of recreating it. The stopped replica, restarted on its home,
// follows; killing the leader (SIGKILL to it and its plugins, as a node
// failure) moves the Lease within 15 s, and the new leader adopts and
// finally deletes the same pod.
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
	// The Service may send the pod's connections to either replica: both
	// answer, the leader that created the pod and the follower that serves
	// it from the same resource.
	agent := cl.fakePod(t, pod)
	agent.answers(t, leader, "on the leader that created it")
	agent.answers(t, follower, "on the follower")

	// A rolling update: the leader, which created the pod, gets SIGTERM.
	// It releases the Lease and leaves the pod running
	// (KeepPodsOnShutdown); the other replica takes over and adopts it.
	leader.terminate(t)
	eventually(t, "the follower to take the released Lease", func() bool { return cl.holder(t, ns) == follower.identity() })
	cl.waitAdopted(t, ns, "ha", follower.identity())
	if p := cl.pod(t, ns, "crd-ha"); p == nil || p.UID != pod.UID || p.DeletionTimestamp != nil {
		t.Fatalf("a graceful stop of the leader deleted or replaced the sandbox pod (old UID %s, now %v)", pod.UID, p)
	}
	// The agent keeps working through the rolling update.
	agent.answers(t, follower, "after the leader stopped")

	// The stopped replica comes back on its home and follows.
	back := cl.startReplica(t, ns, leader.home)
	if h := cl.holder(t, ns); h != follower.identity() {
		t.Fatalf("after the old leader restarted the Lease is held by %q, want %q", h, follower.identity())
	}
	// The restarted replica re-attaches the running pod: it answers again
	// without the pod being recreated, as a follower.
	agent.answers(t, back, "after it restarted")
	if ae := cl.get(t, ns, "ha"); ae.Status.ReconciledBy != follower.identity() {
		t.Fatalf("the restarted follower reconciled (status.reconciledBy %q)", ae.Status.ReconciledBy)
	}

	// A node failure: SIGKILL to the leader and its plugins. The Lease
	// expires and the restarted replica takes over and adopts the pod.
	killed := time.Now()
	follower.kill()
	eventually(t, "the restarted replica to take the Lease", func() bool { return cl.holder(t, ns) == back.identity() })
	took := time.Since(killed)
	t.Logf("the Lease moved %.1fs after the leader was killed (lease duration 5s)", took.Seconds())
	if took > 15*time.Second {
		// With a 5 s Lease the takeover is bounded by the lease duration
		// plus a retry period; 15 s is what the issue allows.
		t.Errorf("takeover took %s, more than 15 s", took)
	}
	cl.waitAdopted(t, ns, "ha", back.identity())
	if p := cl.pod(t, ns, "crd-ha"); p == nil || p.UID != pod.UID || p.DeletionTimestamp != nil {
		t.Fatalf("the new leader recreated the sandbox pod instead of adopting it (old UID %s, now %v)", pod.UID, p)
	}
	agent.answers(t, back, "after the other replica was killed")

	// The leader deletes the sandbox.
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
	// The deleted sandbox's pod is answered nowhere.
	if code, body, _ := agent.ask(back); code != 0 {
		t.Fatalf("a replica still answered the deleted sandbox's pod: %d %s", code, body)
	}
}
