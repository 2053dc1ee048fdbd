//go:build kubernetes

package credentials

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// TestKubernetesSecretBackend runs against the real API server that
// make test-k8s starts (scripts/k8s-testenv.sh).
func TestKubernetesSecretBackend(t *testing.T) {
	path := os.Getenv("NEMOCLAVE_TEST_KUBECONFIG")
	if path == "" {
		t.Skip("NEMOCLAVE_TEST_KUBECONFIG is not set: run `make test-k8s`, which starts a real API server on loopback")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	ns := "nc-cred-" + hex.EncodeToString(b)
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })

	k := &KubernetesSecret{Client: c, Namespace: ns, Secret: "nemoclave-credentials"}
	if _, err := k.Get(ctx, "OPENAI_API_KEY"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get before the Secret exists = %v, want ErrNotFound", err)
	}
	if l, err := k.List(ctx); err != nil || len(l) != 0 {
		t.Fatalf("List before the Secret exists = %v, %v", l, err)
	}
	const value = "sk-test-0123456789"
	if err := k.Set(ctx, "OPENAI_API_KEY", NewSecret(value)); err != nil {
		t.Fatalf("Set: %v", err)
	}
	if err := k.Set(ctx, "NVIDIA_API_KEY", NewSecret("nvapi-abcdefgh")); err != nil {
		t.Fatalf("second Set: %v", err)
	}
	got, err := k.Get(ctx, "OPENAI_API_KEY")
	if err != nil || got.Reveal() != value {
		t.Fatalf("Get = %v, %v", got, err)
	}
	if s := fmt.Sprint(got); strings.Contains(s, value) {
		t.Fatal("a Secret printed its value")
	}
	l, err := k.List(ctx)
	if err != nil || len(l) != 2 || l[0].Name != "NVIDIA_API_KEY" || l[0].Backend != "kubernetes" {
		t.Fatalf("List = %+v, %v", l, err)
	}
	r, err := RedactorFor(ctx, k)
	if err != nil || r.Redact("key "+value) != "key [REDACTED]" {
		t.Fatalf("redactor over the Secret: %v", err)
	}
	if err := k.Delete(ctx, "OPENAI_API_KEY"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := k.Get(ctx, "OPENAI_API_KEY"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete = %v", err)
	}
	if err := k.Delete(ctx, "OPENAI_API_KEY"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Delete = %v", err)
	}

	// A daemon without patch rights (the shipped RBAC) reads but cannot
	// write, and says where to change the value instead.
	ro := *cfg
	ro.Impersonate.UserName = "system:serviceaccount:" + ns + ":nobody"
	rc, err := kubernetes.NewForConfig(&ro)
	if err != nil {
		t.Fatal(err)
	}
	kro := &KubernetesSecret{Client: rc, Namespace: ns, Secret: "nemoclave-credentials"}
	if _, err := kro.Get(ctx, "NVIDIA_API_KEY"); err == nil || !strings.Contains(err.Error(), "grant get") {
		t.Fatalf("Get without RBAC = %v, want advice to grant get", err)
	}
	if err := kro.Set(ctx, "X_KEY", NewSecret("abcdefgh")); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("Set without RBAC = %v, want the read-only advice", err)
	}
}
