//go:build !kubernetes

package serve

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/nemoclave/nemoclave/host/credentials"
	"github.com/nemoclave/nemoclave/host/runtime"
)

// The default build links no client-go: the kubernetes sandbox driver and
// the Secret credential backend are in the kubernetes build only
// (`make build-k8s`, bin/nemoclave-k8s, and the container image). Asking
// this build for a cluster fails with an error naming the build that has
// one, instead of a silently local run.

// kubernetesEnablers are the variables that turn the kubernetes driver or
// the Secret backend on; the others only tune them.
var kubernetesEnablers = []string{"NEMOCLAVE_KUBECONFIG", "NEMOCLAVE_K8S_IMAGE", "NEMOCLAVE_K8S_CREDENTIALS_SECRET", "NEMOCLAVE_K8S_CONTROLLER"}

// setupKubernetes fails when the daemon is asked for a cluster.
func setupKubernetes(_ context.Context, _ string, k KubernetesConfig, _ *slog.Logger) (kubernetesSetup, error) {
	asked := append([]string(nil), k.FlagsGiven...)
	for _, v := range kubernetesEnablers {
		if os.Getenv(v) != "" {
			asked = append(asked, "$"+v)
		}
	}
	if len(asked) > 0 {
		return noKubernetes(), fmt.Errorf("%s ask for the kubernetes sandbox driver, which this nemoclave binary is built without (it links no Kubernetes client): run the %s build instead (`make build-k8s` builds bin/%s; the container image carries it), or unset them to run sandboxes locally",
			strings.Join(asked, ", "), runtime.KubernetesBuild, runtime.KubernetesBuild)
	}
	return noKubernetes(), nil
}

// KubernetesAvailable is validate's answer for driver = "kubernetes".
func KubernetesAvailable() error {
	return fmt.Errorf("this nemoclave binary is built without the kubernetes sandbox driver; validate and run the blueprint with the %s build (`make build-k8s`)", runtime.KubernetesBuild)
}

// CredentialStore is the store the daemon resolves credentials from:
// credentials.json, then the environment.
func CredentialStore(_ context.Context, home string) (credentials.Backend, error) {
	return credentials.Default(home), nil
}
