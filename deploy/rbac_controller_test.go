package deploy

import (
	"context"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// TestBaseRBACIsEnoughForTheController does, as the daemon's service
// account with only the shipped RBAC, what the AgentEnvironment controller
// and its leader election do, and checks it can do no more: the
// controller's rights end at nemoclave-agents and the one Lease.
func TestBaseRBACIsEnoughForTheController(t *testing.T) {
	kc := testKubeconfig(t)
	base, stderr, err := kubectl(t, kc, nil, "kustomize", "base")
	if err != nil {
		t.Fatalf("kustomize base: %v\n%s", err, stderr)
	}
	if _, stderr, err := kubectl(t, kc, []byte(base), "apply", "-f", "-"); err != nil {
		t.Fatalf("apply base: %v\n%s", err, stderr)
	}
	if _, stderr, err := kubectl(t, kc, nil, "wait", "--for", "condition=established", "--timeout", "60s", "crd/agentenvironments.nemoclave.dev"); err != nil {
		t.Fatalf("CRD not established: %v\n%s", err, stderr)
	}
	admin, err := clientcmd.BuildConfigFromFlags("", kc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	gvr := schema.GroupVersionResource{Group: "nemoclave.dev", Version: "v1alpha1", Resource: "agentenvironments"}
	adminDyn := dynamic.NewForConfigOrDie(admin)
	ae := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "nemoclave.dev/v1alpha1", "kind": "AgentEnvironment",
		"metadata": map[string]any{"name": "rbac-check"},
		"spec":     map[string]any{"blueprint": "# empty"},
	}}
	// No controller runs here to drop the finalizer this test adds.
	remove := func() {
		r := adminDyn.Resource(gvr).Namespace("nemoclave-agents")
		if cur, err := r.Get(context.Background(), "rbac-check", metav1.GetOptions{}); err == nil {
			cur.SetFinalizers(nil)
			_, _ = r.Update(context.Background(), cur, metav1.UpdateOptions{})
		}
		_ = r.Delete(context.Background(), "rbac-check", metav1.DeleteOptions{})
	}
	remove()
	if _, err := adminDyn.Resource(gvr).Namespace("nemoclave-agents").Create(ctx, ae, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	defer remove()

	cfg := rest.CopyConfig(admin)
	cfg.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:nemoclave-system:nemoclave-gateway",
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:nemoclave-system", "system:authenticated"},
	}
	dyn := dynamic.NewForConfigOrDie(cfg)
	c := kubernetes.NewForConfigOrDie(cfg)
	aes := dyn.Resource(gvr).Namespace("nemoclave-agents")

	got, err := aes.Get(ctx, "rbac-check", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get an AgentEnvironment: %v", err)
	}
	if _, err := aes.List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("list AgentEnvironments: %v", err)
	}
	got.SetFinalizers([]string{"nemoclave.dev/sandboxes"})
	if got, err = aes.Update(ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("add the finalizer: %v", err)
	}
	_ = unstructured.SetNestedField(got.Object, int64(1), "status", "observedGeneration")
	if _, err := aes.UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("write status: %v", err)
	}
	if _, err := c.CoreV1().ConfigMaps("nemoclave-agents").List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("list ConfigMaps of blueprints: %v", err)
	}
	leases := c.CoordinationV1().Leases("nemoclave-system")
	_ = kubernetes.NewForConfigOrDie(admin).CoordinationV1().Leases("nemoclave-system").Delete(ctx, "nemoclave-controller", metav1.DeleteOptions{})
	holder := "rbac-check"
	l, err := leases.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "nemoclave-controller"}, Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create the leader Lease: %v", err)
	}
	if _, err := leases.Update(ctx, l, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("renew the leader Lease: %v", err)
	}
	_ = leases.Delete(ctx, "nemoclave-controller", metav1.DeleteOptions{}) // may be denied; the admin cleans up below
	_ = kubernetes.NewForConfigOrDie(admin).CoordinationV1().Leases("nemoclave-system").Delete(ctx, "nemoclave-controller", metav1.DeleteOptions{})

	denied := map[string]error{}
	_, denied["list AgentEnvironments in another namespace"] = dyn.Resource(gvr).Namespace("default").List(ctx, metav1.ListOptions{})
	_, denied["create AgentEnvironments"] = aes.Create(ctx, ae, metav1.CreateOptions{})
	_, denied["list ConfigMaps of the system namespace"] = c.CoreV1().ConfigMaps("nemoclave-system").List(ctx, metav1.ListOptions{})
	_, denied["read Secrets beside the blueprints"] = c.CoreV1().Secrets("nemoclave-agents").List(ctx, metav1.ListOptions{})
	_, denied["renew another Lease"] = leases.Get(ctx, "kube-scheduler", metav1.GetOptions{})
	for what, err := range denied {
		if !apierrors.IsForbidden(err) {
			t.Errorf("the daemon's service account could %s (err %v); the controller's RBAC is wider than it needs", what, err)
		}
	}
}
