//go:build !kubernetes

package cli

import (
	"sort"

	"github.com/spf13/cobra"

	"github.com/nemoclave/nemoclave/host/daemon/serve"
	"github.com/nemoclave/nemoclave/host/runtime"
)

// The default build links no client-go: the kubernetes sandbox driver and
// the Secret credential backend are in the kubernetes build only
// (`make build-k8s`, bin/nemoclave-k8s, and the container image). The
// daemon still knows the kubernetes flags, so that asking this build for a
// cluster fails with an error naming the build that has one
// (host/daemon/serve), instead of an unknown flag or a silently local run.

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
	"kubernetes-toleration":         "NEMOCLAVE_K8S_TOLERATIONS", "kubernetes-scheduling-file": "NEMOCLAVE_K8S_SCHEDULING_FILE",
	"kubernetes-controller": "NEMOCLAVE_K8S_CONTROLLER", "kubernetes-lease-namespace": "NEMOCLAVE_K8S_LEASE_NAMESPACE",
	"kubernetes-lease-name": "NEMOCLAVE_K8S_LEASE_NAME", "kubernetes-lease-duration": "NEMOCLAVE_K8S_LEASE_DURATION",
	"health-probe-address": "NEMOCLAVE_HEALTH_PROBE_ADDRESS", "kubernetes-controller-namespace": "NEMOCLAVE_K8S_CONTROLLER_NAMESPACES",
}

// addKubernetesDaemonFlags accepts the kubernetes flags, hidden, so that
// serve.Run can refuse them by name (kubernetesFlagsGiven); k stays empty.
func addKubernetesDaemonFlags(cmd *cobra.Command, _ *serve.KubernetesConfig) {
	for _, name := range kubernetesFlagNames() {
		cmd.Flags().String(name, "", "only in the "+runtime.KubernetesBuild+" build ($"+kubernetesFlagEnv[name]+")")
		_ = cmd.Flags().MarkHidden(name)
		if name == "kubernetes-controller" {
			cmd.Flags().Lookup(name).NoOptDefVal = "true" // a boolean in the kubernetes build
		}
	}
}

// kubernetesFlagNames are the kubernetes flags, sorted.
func kubernetesFlagNames() []string {
	names := make([]string, 0, len(kubernetesFlagEnv))
	for name := range kubernetesFlagEnv {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// kubernetesFlagsGiven are the kubernetes flags given on cmd's command line.
func kubernetesFlagsGiven(cmd *cobra.Command) []string {
	var set []string
	for _, name := range kubernetesFlagNames() {
		if cmd.Flags().Changed(name) {
			set = append(set, "--"+name)
		}
	}
	return set
}

// kubernetesCommands are the commands only the kubernetes build has: none.
func kubernetesCommands(*Globals) []*cobra.Command { return nil }
