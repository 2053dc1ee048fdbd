//go:build kubernetes

package controller

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// testBlueprint is the offline quickstart on Kubernetes, trimmed to what a
// pod needs: the replay model (its cassette is a second ConfigMap key) and
// a policy.
const testBlueprint = `
variable "prompt" {
  type    = string
  default = "What files are in my workspace?"
}

plugin "llm" "replay" {
  source = "builtin/llm-replay"
  config {
    cassette = "${path.blueprint}/cassette.json"
    mode     = "replay"
  }
}

inference {
  default = "default"
  model "default" {
    provider = plugin.llm.replay
    model    = "replay"
  }
}

policy "crd" {
  unknown_hosts = "deny"
}

sandbox "SANDBOX" {
  driver = "kubernetes"
  policy = policy.crd
}

agent "assistant" {
  sandbox = sandbox.SANDBOX
  command = ["nemoclave", "agent", "-p", var.prompt]
}
`

func blueprintConfigMap(t *testing.T, ns, name, sandbox string) *corev1.ConfigMap {
	t.Helper()
	cassette, err := os.ReadFile(filepath.Join("..", "..", "examples", "quickstart", "cassette.json"))
	if err != nil {
		t.Fatal(err)
	}
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Data: map[string]string{
		"blueprint.hcl": strings.ReplaceAll(testBlueprint, "SANDBOX", sandbox), "cassette.json": string(cassette),
	}}
}

func (cl *cluster) get(t *testing.T, ns, name string) *AgentEnvironment {
	t.Helper()
	var ae AgentEnvironment
	if err := cl.c.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, &ae); err != nil {
		t.Fatalf("get AgentEnvironment %s/%s: %v", ns, name, err)
	}
	return &ae
}

// waitReady waits until the status describes the current generation and
// says Ready.
func (cl *cluster) waitReady(t *testing.T, ns, name string) *AgentEnvironment {
	t.Helper()
	var ae *AgentEnvironment
	eventually(t, "AgentEnvironment "+name+" to be Ready", func() bool {
		ae = cl.get(t, ns, name)
		return ae.Status.ObservedGeneration == ae.Generation && meta.IsStatusConditionTrue(ae.Status.Conditions, ConditionReady)
	})
	return ae
}

func (cl *cluster) pod(t *testing.T, ns, sandbox string) *corev1.Pod {
	t.Helper()
	var p corev1.Pod
	err := cl.c.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "nc-" + sandbox}, &p)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return &p
}

// managed lists what the driver made in ns.
func (cl *cluster) managed(t *testing.T, ns string) []string {
	t.Helper()
	var out []string
	sel := client.MatchingLabels{"app.kubernetes.io/managed-by": "nemoclave"}
	var pods corev1.PodList
	var sas corev1.ServiceAccountList
	var cms corev1.ConfigMapList
	for _, l := range []client.ObjectList{&pods, &sas, &cms} {
		if err := cl.c.List(context.Background(), l, client.InNamespace(ns), sel); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, "pod/"+p.Name)
		}
	}
	for _, s := range sas.Items {
		out = append(out, "serviceaccount/"+s.Name)
	}
	for _, c := range cms.Items {
		out = append(out, "configmap/"+c.Name)
	}
	return out
}

// An AgentEnvironment's lifecycle: create runs its sandbox (a pod admitted
// under "restricted"), an update replaces the pod, delete cleans up before
// the finalizer lets the resource go.
func TestCRD_CreateUpdateDelete(t *testing.T) {
	cl := testCluster(t)
	ns := cl.namespace(t)
	cl.startReplica(t, ns, "")
	ctx := context.Background()

	if err := cl.c.Create(ctx, blueprintConfigMap(t, ns, "quick-blueprint", "crd-quick")); err != nil {
		t.Fatal(err)
	}
	ae := &AgentEnvironment{ObjectMeta: metav1.ObjectMeta{Name: "quick", Namespace: ns}, Spec: AgentEnvironmentSpec{
		ConfigMapRef: &ConfigMapBlueprint{Name: "quick-blueprint"}, Variables: map[string]string{"prompt": "first question"},
	}}
	if err := cl.c.Create(ctx, ae); err != nil {
		t.Fatal(err)
	}
	got := cl.waitReady(t, ns, "quick")
	if strings.Join(got.Status.Sandboxes, ",") != "crd-quick" {
		t.Fatalf("status.sandboxes = %v, want [crd-quick]", got.Status.Sandboxes)
	}
	if got.Status.BlueprintHash == "" || got.Status.ReconciledBy == "" {
		t.Fatalf("status lacks blueprintHash or reconciledBy: %+v", got.Status)
	}
	if !meta.IsStatusConditionTrue(got.Status.Conditions, ConditionValid) {
		t.Fatalf("BlueprintValid is not True: %+v", got.Status.Conditions)
	}
	if len(got.Finalizers) != 1 || got.Finalizers[0] != Finalizer {
		t.Fatalf("finalizers = %v, want [%s]", got.Finalizers, Finalizer)
	}
	first := cl.pod(t, ns, "crd-quick")
	if first == nil {
		t.Fatal("no sandbox pod nc-crd-quick after Ready")
	}
	if first.Status.Phase != corev1.PodPending && first.Status.Phase != "" {
		t.Fatalf("pod phase %s: no kubelet runs here, so it must be Pending", first.Status.Phase)
	}
	var cm corev1.ConfigMap
	if err := cl.c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "nc-crd-quick"}, &cm); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cm.Data["config.json"], "first question") {
		t.Fatalf("the sandbox's supervisor config does not carry the variable's value:\n%s", cm.Data["config.json"])
	}
	var evs eventsv1.EventList
	eventually(t, "a SandboxesCreated event", func() bool {
		if err := cl.c.List(ctx, &evs, client.InNamespace(ns)); err != nil {
			return false
		}
		for _, e := range evs.Items {
			if e.Regarding.Name == "quick" && e.Reason == ReasonCreated {
				return true
			}
		}
		return false
	})

	// Update: a new variable value replaces the sandbox.
	cur := cl.get(t, ns, "quick")
	cur.Spec.Variables["prompt"] = "second question"
	if err := cl.c.Update(ctx, cur); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the update to replace the pod", func() bool {
		ae := cl.get(t, ns, "quick")
		p := cl.pod(t, ns, "crd-quick")
		return ae.Status.ObservedGeneration == ae.Generation && meta.IsStatusConditionTrue(ae.Status.Conditions, ConditionReady) &&
			p != nil && p.UID != first.UID && p.DeletionTimestamp == nil
	})
	if err := cl.c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "nc-crd-quick"}, &cm); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cm.Data["config.json"], "second question") {
		t.Fatalf("after the update the supervisor config still lacks the new value:\n%s", cm.Data["config.json"])
	}

	// Delete: the finalizer holds the resource until the sandbox is gone.
	if err := cl.c.Delete(ctx, cl.get(t, ns, "quick")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the AgentEnvironment to be deleted", func() bool {
		var ae AgentEnvironment
		return apierrors.IsNotFound(cl.c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "quick"}, &ae))
	})
	if left := cl.managed(t, ns); len(left) != 0 {
		t.Fatalf("after delete the sandbox namespace still holds %v", left)
	}
}

// A blueprint that does not evaluate is reported on the resource with the
// validate diagnostic; nothing is created.
func TestCRD_InvalidBlueprintReportsDiagnostic(t *testing.T) {
	cl := testCluster(t)
	ns := cl.namespace(t)
	cl.startReplica(t, ns, "")
	ctx := context.Background()
	bad := strings.ReplaceAll(testBlueprint, "policy = policy.crd", "policy = policy.missing")
	ae := &AgentEnvironment{ObjectMeta: metav1.ObjectMeta{Name: "broken", Namespace: ns}, Spec: AgentEnvironmentSpec{
		Blueprint: strings.ReplaceAll(bad, "SANDBOX", "crd-broken"),
	}}
	if err := cl.c.Create(ctx, ae); err != nil {
		t.Fatal(err)
	}
	var cond *metav1.Condition
	eventually(t, "the BlueprintValid condition", func() bool {
		got := cl.get(t, ns, "broken")
		cond = meta.FindStatusCondition(got.Status.Conditions, ConditionValid)
		return got.Status.ObservedGeneration == got.Generation && cond != nil
	})
	if cond.Status != metav1.ConditionFalse || cond.Reason != ReasonInvalid {
		t.Fatalf("BlueprintValid = %s/%s, want False/%s: %s", cond.Status, cond.Reason, ReasonInvalid, cond.Message)
	}
	// The diagnostic names the bad reference and the line, in the
	// resource's terms (blueprint.hcl line N), not the daemon's copy.
	if !strings.Contains(cond.Message, `There is no policy "missing"`) || !strings.Contains(cond.Message, "on blueprint.hcl line") {
		t.Fatalf("the condition does not carry the diagnostic:\n%s", cond.Message)
	}
	got := cl.get(t, ns, "broken")
	if meta.IsStatusConditionTrue(got.Status.Conditions, ConditionReady) {
		t.Fatal("an invalid blueprint is reported Ready")
	}
	if left := cl.managed(t, ns); len(left) != 0 {
		t.Fatalf("an invalid blueprint created %v", left)
	}

	// The API server itself refuses a spec with both sources (the CRD's
	// validation rule).
	both := &AgentEnvironment{ObjectMeta: metav1.ObjectMeta{Name: "both", Namespace: ns}, Spec: AgentEnvironmentSpec{
		Blueprint: "x", ConfigMapRef: &ConfigMapBlueprint{Name: "y"},
	}}
	if err := cl.c.Create(ctx, both); err == nil || !strings.Contains(err.Error(), "exactly one of spec.blueprint and spec.configMapRef") {
		t.Fatalf("creating a spec with both sources: %v", err)
	}
}
