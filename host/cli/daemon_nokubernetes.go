//go:build !kubernetes

package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nemoclave/nemoclave/host/credentials"
	"github.com/nemoclave/nemoclave/host/runtime"
)

// The default build links no client-go: the kubernetes sandbox driver and
// the Secret credential backend are in the kubernetes build only
// (`make build-k8s`, bin/nemoclave-k8s, and the container image). The
// daemon still knows the kubernetes flags and their environment variables,
// so that asking this build for a cluster fails with an error naming the
// build that has one, instead of an unknown flag or a silently local run.

// kubernetesFlagEnv are the kubernetes daemon flags and their variables.
var kubernetesFlagEnv = map[string]string{
	"kubeconfig": "NEMOCLAVE_KUBECONFIG", "kubernetes-namespace": "NEMOCLAVE_K8S_NAMESPACE",
	"kubernetes-image": "NEMOCLAVE_K8S_IMAGE", "kubernetes-runtime-class": "NEMOCLAVE_K8S_RUNTIME_CLASS",
	"kubernetes-storage-class": "NEMOCLAVE_K8S_STORAGE_CLASS", "kubernetes-workspace-size": "NEMOCLAVE_K8S_WORKSPACE_SIZE",
	"kubernetes-gateway-namespace": "NEMOCLAVE_K8S_GATEWAY_NAMESPACE", "kubernetes-gateway-service": "NEMOCLAVE_K8S_GATEWAY_SERVICE",
	"kubernetes-gateway-address": "NEMOCLAVE_K8S_GATEWAY_ADDRESS", "kubernetes-front-address": "NEMOCLAVE_K8S_FRONT_ADDRESS",
	"kubernetes-audience": "NEMOCLAVE_K8S_AUDIENCE", "kubernetes-front-tls-cert": "NEMOCLAVE_K8S_FRONT_TLS_CERT",
	"kubernetes-front-tls-key": "NEMOCLAVE_K8S_FRONT_TLS_KEY", "kubernetes-front-ca": "NEMOCLAVE_K8S_FRONT_CA",
	"kubernetes-credentials-secret": "NEMOCLAVE_K8S_CREDENTIALS_SECRET",
	"kubernetes-controller":         "NEMOCLAVE_K8S_CONTROLLER", "kubernetes-lease-namespace": "NEMOCLAVE_K8S_LEASE_NAMESPACE",
	"kubernetes-lease-name": "NEMOCLAVE_K8S_LEASE_NAME", "kubernetes-lease-duration": "NEMOCLAVE_K8S_LEASE_DURATION",
	"health-probe-address": "NEMOCLAVE_HEALTH_PROBE_ADDRESS", "kubernetes-controller-namespace": "NEMOCLAVE_K8S_CONTROLLER_NAMESPACES",
}

// kubernetesEnablers are the variables that turn the kubernetes driver or
// the Secret backend on; the others only tune them.
var kubernetesEnablers = []string{"NEMOCLAVE_KUBECONFIG", "NEMOCLAVE_K8S_IMAGE", "NEMOCLAVE_K8S_CREDENTIALS_SECRET", "NEMOCLAVE_K8S_CONTROLLER"}

// kubernetesFlagsSet are the kubernetes flags given on the command line.
var kubernetesFlagsSet func() []string

func addKubernetesDaemonFlags(cmd *cobra.Command) {
	names := make([]string, 0, len(kubernetesFlagEnv))
	for name := range kubernetesFlagEnv {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		cmd.Flags().String(name, "", "only in the "+runtime.KubernetesBuild+" build ($"+kubernetesFlagEnv[name]+")")
		_ = cmd.Flags().MarkHidden(name)
		if name == "kubernetes-controller" {
			cmd.Flags().Lookup(name).NoOptDefVal = "true" // a boolean in the kubernetes build
		}
	}
	kubernetesFlagsSet = func() []string {
		var set []string
		for _, name := range names {
			if cmd.Flags().Changed(name) {
				set = append(set, "--"+name)
			}
		}
		return set
	}
}

// setupDaemonKubernetes fails when the daemon is asked for a cluster.
func setupDaemonKubernetes(_ context.Context, _ string, _ *slog.Logger) (daemonKubernetes, error) {
	var asked []string
	if kubernetesFlagsSet != nil {
		asked = kubernetesFlagsSet()
	}
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

// kubernetesAvailable is validate's answer for driver = "kubernetes".
func kubernetesAvailable() error {
	return fmt.Errorf("this nemoclave binary is built without the kubernetes sandbox driver; validate and run the blueprint with the %s build (`make build-k8s`)", runtime.KubernetesBuild)
}

// validateCredentialStore is the store the daemon would resolve
// credentials from: credentials.json, then the environment.
func validateCredentialStore(_ context.Context, home string) (credentials.Backend, error) {
	return credentials.Default(home), nil
}

// kubernetesCommands are the commands only the kubernetes build has: none.
func kubernetesCommands(*Globals) []*cobra.Command { return nil }
