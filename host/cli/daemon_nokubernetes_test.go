//go:build !kubernetes

package cli

import (
	"strings"
	"testing"
)

// The default build links no Kubernetes client: a daemon asked for a
// cluster refuses to start and names the build that has the driver,
// whether the flag or the variable asks.
func TestDefaultBuildDaemonRefusesKubernetes(t *testing.T) {
	out, err := runCLI(t, "--home", t.TempDir(), "daemon", "--kubeconfig", "/nonexistent/kubeconfig", "--kubernetes-image", "img")
	if err == nil || !strings.Contains(err.Error(), "--kubeconfig, --kubernetes-image") || !strings.Contains(err.Error(), "nemoclave-k8s") {
		t.Fatalf("daemon with kubernetes flags: %v\n%s", err, out)
	}
	// Every kubernetes-build flag is known here, the scheduling ones too.
	out, err = runCLI(t, "--home", t.TempDir(), "daemon", "--kubernetes-toleration", "gpu:NoSchedule", "--kubernetes-scheduling-file", "/nonexistent/s.yaml")
	if err == nil || !strings.Contains(err.Error(), "--kubernetes-scheduling-file, --kubernetes-toleration") || !strings.Contains(err.Error(), "nemoclave-k8s") {
		t.Fatalf("daemon with kubernetes scheduling flags: %v\n%s", err, out)
	}
	t.Setenv("NEMOCLAVE_KUBECONFIG", "/nonexistent/kubeconfig")
	out, err = runCLI(t, "--home", t.TempDir(), "daemon")
	if err == nil || !strings.Contains(err.Error(), "$NEMOCLAVE_KUBECONFIG") || !strings.Contains(err.Error(), "make build-k8s") {
		t.Fatalf("daemon with $NEMOCLAVE_KUBECONFIG: %v\n%s", err, out)
	}
}
