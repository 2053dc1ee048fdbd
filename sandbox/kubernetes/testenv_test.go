package kubernetes

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// envKubeconfig names the kubeconfig of a real API server; make test-k8s
// (scripts/k8s-testenv.sh) starts one and sets it.
const envKubeconfig = "NEMOCLAVE_TEST_KUBECONFIG"

// testCluster connects to the test API server or skips the test.
func testCluster(t *testing.T) (*rest.Config, kubernetes.Interface) {
	t.Helper()
	path := os.Getenv(envKubeconfig)
	if path == "" {
		t.Skipf("%s is not set: run `make test-k8s`, which starts etcd and kube-apiserver on loopback (scripts/k8s-testenv.sh)", envKubeconfig)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	cfg.QPS, cfg.Burst = 200, 400
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, c
}

// restrictedNamespace creates a namespace that enforces Pod Security
// "restricted" at the latest version, deleted when the test ends.
func restrictedNamespace(t *testing.T, c kubernetes.Interface) string {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "nc-test-" + hex.EncodeToString(b)
	ctx := context.Background()
	_, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
		"pod-security.kubernetes.io/enforce":         "restricted",
		"pod-security.kubernetes.io/enforce-version": "latest",
		"pod-security.kubernetes.io/warn":            "restricted",
	}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	// The API server's ServiceAccount admission wants the namespace's
	// default service account before it admits pods; the controller
	// manager that would create it does not run here.
	if _, err := c.CoreV1().ServiceAccounts(name).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create default service account: %v", err)
	}
	t.Cleanup(func() { _ = c.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{}) })
	return name
}

// testDriver is a driver on a fresh restricted namespace with a gateway
// Service and a Front on loopback.
type testDriver struct {
	*Driver
	ns     string
	client kubernetes.Interface
	front  *Front
}

func newTestDriver(t *testing.T, tweak ...func(ns string, o *Options, ln *net.Listener)) *testDriver {
	t.Helper()
	cfg, c := testCluster(t)
	ns := restrictedNamespace(t, c)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	_, err := c.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "nemoclave-gateway"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app.kubernetes.io/name": "nemoclave", "app.kubernetes.io/component": "gateway"},
			Ports:    []corev1.ServicePort{{Name: "sandbox-front", Port: 7443}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create gateway service: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Client: c, Config: cfg, Namespace: ns, Image: "registry.example/nemoclave:test", GatewayPort: 7443}
	for _, f := range tweak {
		f(ns, &o, &ln)
	}
	front := NewFront(ln, NewAuthenticator(c, "nemoclave-gateway"), t.Logf)
	go func() { _ = front.Serve(ctx) }()
	o.Front = front
	d, err := New(ctx, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &testDriver{Driver: d, ns: ns, client: c, front: front}
}

// eventually polls cond until it holds or a minute passes (a failure
// bound only: an apiserver on a loaded machine can take its time).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
