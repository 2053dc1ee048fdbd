//go:build kubernetes

package controller

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// The tests run real daemon processes (bin/nemoclave-k8s, `make build-k8s`)
// against the real kube-apiserver and etcd of `make test-k8s`. There is no
// kubelet, so sandbox pods stay Pending: the tests assert what the daemon
// writes (pods admitted under Pod Security "restricted", status, Lease).

const envKubeconfig = "NEMOCLAVE_TEST_KUBECONFIG"

type cluster struct {
	kubeconfig string
	c          client.Client
}

func testCluster(t *testing.T) *cluster {
	t.Helper()
	path := os.Getenv(envKubeconfig)
	if path == "" {
		t.Skipf("%s is not set: run `make test-k8s`, which starts etcd and kube-apiserver on loopback (scripts/k8s-testenv.sh)", envKubeconfig)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	scheme := k8sruntime.NewScheme()
	for _, add := range []func(*k8sruntime.Scheme) error{clientgoscheme.AddToScheme, apiextv1.AddToScheme, AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	cl := &cluster{kubeconfig: path, c: c}
	cl.installCRD(t)
	return cl
}

// installCRD applies deploy/crds/agentenvironments.yaml, the manifest users
// apply, and waits until the API server serves it.
func (cl *cluster) installCRD(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "crds", "agentenvironments.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var crd apiextv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(b, &crd); err != nil {
		t.Fatalf("deploy/crds/agentenvironments.yaml: %v", err)
	}
	ctx := context.Background()
	var cur apiextv1.CustomResourceDefinition
	switch err := cl.c.Get(ctx, client.ObjectKey{Name: crd.Name}, &cur); {
	case apierrors.IsNotFound(err):
		if err := cl.c.Create(ctx, &crd); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("create the CRD: %v", err)
		}
	case err != nil:
		t.Fatal(err)
	default:
		crd.ResourceVersion = cur.ResourceVersion
		if err := cl.c.Update(ctx, &crd); err != nil && !apierrors.IsConflict(err) {
			t.Fatalf("update the CRD: %v", err)
		}
	}
	eventually(t, "the CRD to be established", func() bool {
		if err := cl.c.Get(ctx, client.ObjectKey{Name: crd.Name}, &cur); err != nil {
			return false
		}
		for _, c := range cur.Status.Conditions {
			if c.Type == apiextv1.Established && c.Status == apiextv1.ConditionTrue {
				var l AgentEnvironmentList
				return cl.c.List(ctx, &l, client.InNamespace("default")) == nil
			}
		}
		return false
	})
}

// namespace creates a namespace enforcing Pod Security "restricted", with
// its default service account (no controller manager runs to make it).
func (cl *cluster) namespace(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "nc-ctrl-" + hex.EncodeToString(b)
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest",
	}}}
	if err := cl.c.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	if err := cl.c.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: name}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Resources whose daemon is gone keep their finalizer; drop it so
		// the namespace can go.
		var l AgentEnvironmentList
		if cl.c.List(context.Background(), &l, client.InNamespace(name)) == nil {
			for i := range l.Items {
				l.Items[i].Finalizers = nil
				_ = cl.c.Update(context.Background(), &l.Items[i])
			}
		}
		_ = cl.c.Delete(context.Background(), ns)
	})
	return name
}

// replica is one daemon process.
type replica struct {
	cmd    *exec.Cmd
	home   string
	health string
	front  string // where sandbox pods' connections reach this replica's gateway
	exited chan struct{}
}

func (r *replica) identity() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s_%d", host, r.cmd.Process.Pid)
}

// kill ends the daemon and every process it started (its plugins) at once,
// as a node failure would; it has no chance to clean anything up.
func (r *replica) kill() {
	_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
	<-r.exited
}

// terminate stops the daemon as the kubelet does in a rolling update
// (SIGTERM) and waits for it to exit.
func (r *replica) terminate(t *testing.T) {
	t.Helper()
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(2 * time.Minute):
		t.Fatalf("daemon %s did not exit within 2 minutes of SIGTERM", r.identity())
	}
}

func binary(t *testing.T) (bin, dir string) {
	t.Helper()
	dir = os.Getenv("NEMOCLAVE_BIN_DIR")
	if dir == "" {
		dir, _ = filepath.Abs(filepath.Join("..", "..", "bin"))
	}
	bin = filepath.Join(dir, "nemoclave-k8s")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s is missing: run `make build-k8s` (make test-k8s does)", bin)
	}
	return bin, dir
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startReplica starts `nemoclave-k8s daemon --kubernetes-controller` with
// its own home (and state, unless extra names a shared --state-url) on
// namespace ns, electing with Lease ns/lease; extra are more daemon flags.
func (cl *cluster) startReplica(t *testing.T, ns, home string, extra ...string) *replica {
	t.Helper()
	bin, dir := binary(t)
	if home == "" {
		home = t.TempDir()
	}
	r := &replica{home: home, health: freeAddr(t), front: freeAddr(t), exited: make(chan struct{})}
	args := []string{"--home", home, "daemon",
		"--kubernetes-controller", "--kubernetes-lease-namespace", ns, "--kubernetes-lease-duration", "5s",
		"--kubernetes-controller-namespace", ns, "--health-probe-address", r.health}
	r.cmd = exec.Command(bin, append(args, extra...)...)
	r.cmd.Env = append(os.Environ(),
		"NEMOCLAVE_HOME="+home, "NEMOCLAVE_BIN_DIR="+dir, "NEMOCLAVE_KUBECONFIG="+cl.kubeconfig,
		"NEMOCLAVE_K8S_IMAGE=registry.example/nemoclave-sandbox:test", "NEMOCLAVE_K8S_NAMESPACE="+ns,
		// Pods would dial the gateway Service, which spreads their
		// connections over the replicas; without a kubelet the test dials
		// each replica's Front itself, with the pod's token (podClient).
		"NEMOCLAVE_K8S_GATEWAY_ADDRESS=10.96.0.10:7443", "NEMOCLAVE_K8S_FRONT_ADDRESS="+r.front,
		"NEMOCLAVE_K8S_CREDENTIALS_SECRET=", "POD_NAME=")
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logf, err := os.Create(filepath.Join(home, "daemon-test.log"))
	if err != nil {
		t.Fatal(err)
	}
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = r.cmd.Wait(); logf.Close(); close(r.exited) }()
	t.Cleanup(func() {
		select {
		case <-r.exited:
		default:
			r.kill()
		}
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(home, "daemon-test.log")); err == nil {
				t.Logf("daemon %s log:\n%s", r.identity(), tail(string(b), 40))
			}
		}
	})
	eventually(t, "the daemon's readiness probe", func() bool {
		select {
		case <-r.exited:
			b, _ := os.ReadFile(filepath.Join(home, "daemon-test.log"))
			t.Fatalf("the daemon exited:\n%s", tail(string(b), 40))
		default:
		}
		return probe(r.health, "/readyz") == http.StatusOK
	})
	return r
}

func probe(addr, path string) int {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func tail(s string, n int) string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// eventually polls cond for up to two minutes: generous, because the
// machine is shared and the daemon starts plugin processes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
