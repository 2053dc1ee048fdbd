package deploy

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/policy"
	"github.com/nemoclave/nemoclave/sandbox"
	sbk8s "github.com/nemoclave/nemoclave/sandbox/kubernetes"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// kubectl runs kubectl against the test API server.
func kubectl(t *testing.T, kubeconfig string, stdin []byte, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command("kubectl", append([]string{"--kubeconfig", kubeconfig}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

func testKubeconfig(t *testing.T) string {
	t.Helper()
	path := os.Getenv("NEMOCLAVE_TEST_KUBECONFIG")
	if path == "" {
		t.Skip("NEMOCLAVE_TEST_KUBECONFIG is not set: run `make test-k8s`, which starts a real API server on loopback")
	}
	if _, err := exec.LookPath("kubectl"); err != nil {
		t.Fatal("kubectl is needed to build and dry-run the manifests: apt-get install kubectl")
	}
	return path
}

// TestManifests applies the base for real (there is no controller manager,
// so nothing runs), then dry-runs the base and every overlay server-side.
// A Pod Security warning for the gateway's pod template fails the test,
// because the namespaces enforce "restricted".
func TestManifests(t *testing.T) {
	kc := testKubeconfig(t)
	if _, stderr, err := kubectl(t, kc, nil, "apply", "--server-side", "-f", "testdata/crds/stand-ins.yaml"); err != nil {
		t.Fatalf("install stand-in CRDs: %v\n%s", err, stderr)
	}
	if _, stderr, err := kubectl(t, kc, nil, "wait", "--for", "condition=established", "--timeout", "60s",
		"crd/externalsecrets.external-secrets.io", "crd/secretstores.external-secrets.io", "crd/secretproviderclasses.secrets-store.csi.x-k8s.io",
		"crd/certificates.cert-manager.io", "crd/issuers.cert-manager.io", "crd/servicemonitors.monitoring.coreos.com"); err != nil {
		t.Fatalf("CRDs not established: %v\n%s", err, stderr)
	}
	base, stderr, err := kubectl(t, kc, nil, "kustomize", "base")
	if err != nil {
		t.Fatalf("kustomize base: %v\n%s", err, stderr)
	}
	if _, stderr, err := kubectl(t, kc, []byte(base), "apply", "-f", "-"); err != nil {
		t.Fatalf("apply base: %v\n%s", err, stderr)
	}
	for _, dir := range []string{"base", "overlays/eks", "overlays/aks", "testdata/with-monitoring"} {
		t.Run(dir, func(t *testing.T) {
			out, stderr, err := kubectl(t, kc, nil, "kustomize", dir)
			if err != nil {
				t.Fatalf("kustomize %s: %v\n%s", dir, err, stderr)
			}
			n := strings.Count(out, "\nkind: ")
			res, stderr, err := kubectl(t, kc, []byte(out), "apply", "--dry-run=server", "-f", "-")
			if err != nil {
				t.Fatalf("server-side dry-run of %s failed: %v\n%s", dir, err, stderr)
			}
			if strings.Contains(stderr, "PodSecurity") {
				t.Fatalf("%s: Pod Security warnings:\n%s", dir, stderr)
			}
			if got := strings.Count(res, "(server dry run)"); got != n {
				t.Fatalf("%s: %d of %d objects dry-run:\n%s", dir, got, n, res)
			}
		})
	}
}

// TestBaseRBACIsEnoughForTheDriver impersonates the daemon's service
// account with only the shipped RBAC and runs a sandbox's whole life, then
// checks the same identity cannot do more than it needs.
func TestBaseRBACIsEnoughForTheDriver(t *testing.T) {
	kc := testKubeconfig(t)
	base, stderr, err := kubectl(t, kc, nil, "kustomize", "base")
	if err != nil {
		t.Fatalf("kustomize base: %v\n%s", err, stderr)
	}
	if _, stderr, err := kubectl(t, kc, []byte(base), "apply", "-f", "-"); err != nil {
		t.Fatalf("apply base: %v\n%s", err, stderr)
	}
	admin, err := clientcmd.BuildConfigFromFlags("", kc)
	if err != nil {
		t.Fatal(err)
	}
	ac := kubernetes.NewForConfigOrDie(admin)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The controller manager would create the default service account.
	if _, err := ac.CoreV1().ServiceAccounts("nemoclave-sandboxes").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	cfg := rest.CopyConfig(admin)
	cfg.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:nemoclave-system:nemoclave-gateway",
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:nemoclave-system", "system:authenticated"},
	}
	c := kubernetes.NewForConfigOrDie(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	front := sbk8s.NewFront(ln, sbk8s.NewAuthenticator(c, "nemoclave-gateway"), t.Logf)
	go func() { _ = front.Serve(ctx) }()
	d, err := sbk8s.New(ctx, sbk8s.Options{Client: c, Config: cfg, Namespace: "nemoclave-sandboxes", Image: "nemoclave:test",
		GatewayNamespace: "nemoclave-system", Front: front})
	if err != nil {
		t.Fatalf("driver as the daemon's service account: %v", err)
	}
	spec := sandbox.Spec{
		Name: "rbac-check", Command: []string{"/usr/local/bin/nemoclave", "agent"},
		Policy:    &policy.Policy{Name: "p", Revision: 1, UnknownHosts: policy.UnknownDeny, Filesystem: policy.Filesystem{ReadOnly: []string{"/usr"}, ReadWrite: []string{"/workspace"}}},
		Listeners: []sandbox.ListenerSpec{{Name: sandbox.ListenerInference}},
	}
	if _, err := d.Create(ctx, spec); err != nil {
		t.Fatalf("Create with the shipped RBAC: %v", err)
	}
	if _, err := d.Start(ctx, spec.Name); err != nil {
		t.Fatalf("Start with the shipped RBAC: %v", err)
	}
	if err := d.UpdatePolicy(ctx, spec.Name, spec.Policy); err != nil {
		t.Fatalf("UpdatePolicy with the shipped RBAC: %v", err)
	}
	if _, err := d.List(ctx); err != nil {
		t.Fatalf("List with the shipped RBAC: %v", err)
	}
	if err := d.Delete(ctx, spec.Name); err != nil {
		t.Fatalf("Delete with the shipped RBAC: %v", err)
	}
	if _, err := d.Status(ctx, spec.Name); !errors.Is(err, sandbox.ErrNotFound) {
		t.Fatalf("Status after Delete = %v", err)
	}
	// And no more than that.
	denied := map[string]error{}
	_, denied["read another secret"] = c.CoreV1().Secrets("nemoclave-system").Get(ctx, "something-else", metav1.GetOptions{})
	_, denied["create pods beside the gateway"] = c.CoreV1().Pods("nemoclave-system").List(ctx, metav1.ListOptions{})
	_, denied["read secrets of sandboxes"] = c.CoreV1().Secrets("nemoclave-sandboxes").List(ctx, metav1.ListOptions{})
	_, denied["mint tokens"] = c.CoreV1().ServiceAccounts("nemoclave-sandboxes").CreateToken(ctx, "default", &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{Audiences: []string{"nemoclave-gateway"}}}, metav1.CreateOptions{})
	_, denied["touch other namespaces"] = c.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{})
	for what, err := range denied {
		if !apierrors.IsForbidden(err) {
			t.Errorf("the daemon's service account could %s (err %v); the RBAC is wider than the driver needs", what, err)
		}
	}
}
