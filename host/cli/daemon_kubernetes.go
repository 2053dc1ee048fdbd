//go:build kubernetes

package cli

import (
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/nemoclave/nemoclave/host/daemon/serve"
	sbk8s "github.com/nemoclave/nemoclave/sandbox/kubernetes"
)

// addKubernetesDaemonFlags binds the kubernetes flags of `nemoclave daemon`
// to k. Every flag has an environment variable, because `nemoclave run`
// starts the daemon on demand without flags and the daemon inherits the
// environment.
func addKubernetesDaemonFlags(cmd *cobra.Command, k *serve.KubernetesConfig) {
	f := cmd.Flags()
	env := func(name, def string) string {
		if v := os.Getenv(name); v != "" {
			return v
		}
		return def
	}
	f.StringVar(&k.Kubeconfig, "kubeconfig", env("NEMOCLAVE_KUBECONFIG", ""), "kubeconfig of the cluster for driver = \"kubernetes\" sandboxes ($NEMOCLAVE_KUBECONFIG); in a pod the in-cluster account is used")
	f.StringVar(&k.Namespace, "kubernetes-namespace", env("NEMOCLAVE_K8S_NAMESPACE", "nemoclave-sandboxes"), "namespace of the sandbox pods; it must allow Pod Security \"restricted\" pods ($NEMOCLAVE_K8S_NAMESPACE)")
	f.StringVar(&k.Image, "kubernetes-image", env("NEMOCLAVE_K8S_IMAGE", ""), "image of the sandbox pods: the nemoclave binary plus the agent's tools ($NEMOCLAVE_K8S_IMAGE)")
	f.StringVar(&k.RuntimeClass, "kubernetes-runtime-class", env("NEMOCLAVE_K8S_RUNTIME_CLASS", ""), "runtimeClassName of sandbox pods, e.g. gvisor or kata-vm-isolation ($NEMOCLAVE_K8S_RUNTIME_CLASS)")
	f.StringVar(&k.StorageClass, "kubernetes-storage-class", env("NEMOCLAVE_K8S_STORAGE_CLASS", ""), "storage class of workspace volumes ($NEMOCLAVE_K8S_STORAGE_CLASS)")
	f.StringVar(&k.WorkspaceSize, "kubernetes-workspace-size", env("NEMOCLAVE_K8S_WORKSPACE_SIZE", ""), "put each workspace on a PersistentVolumeClaim of this size (e.g. 20Gi); empty means an emptyDir ($NEMOCLAVE_K8S_WORKSPACE_SIZE)")
	f.StringVar(&k.GatewayNamespace, "kubernetes-gateway-namespace", env("NEMOCLAVE_K8S_GATEWAY_NAMESPACE", ""), "namespace of the gateway Service and pods; default the sandbox namespace ($NEMOCLAVE_K8S_GATEWAY_NAMESPACE)")
	f.StringVar(&k.GatewayService, "kubernetes-gateway-service", env("NEMOCLAVE_K8S_GATEWAY_SERVICE", "nemoclave-gateway"), "Service sandbox pods dial to reach the gateway ($NEMOCLAVE_K8S_GATEWAY_SERVICE)")
	f.StringVar(&k.GatewayAddress, "kubernetes-gateway-address", env("NEMOCLAVE_K8S_GATEWAY_ADDRESS", ""), "ip:port sandbox pods dial instead of the Service's cluster IP ($NEMOCLAVE_K8S_GATEWAY_ADDRESS)")
	f.StringVar(&k.FrontAddress, "kubernetes-front-address", env("NEMOCLAVE_K8S_FRONT_ADDRESS", ":7443"), "address the gateway listens on for sandbox pods ($NEMOCLAVE_K8S_FRONT_ADDRESS)")
	f.StringVar(&k.Audience, "kubernetes-audience", env("NEMOCLAVE_K8S_AUDIENCE", "nemoclave-gateway"), "audience of the sandbox pods' projected tokens ($NEMOCLAVE_K8S_AUDIENCE)")
	f.StringVar(&k.FrontCert, "kubernetes-front-tls-cert", env("NEMOCLAVE_K8S_FRONT_TLS_CERT", ""), "TLS certificate (PEM) the Front presents to sandbox pods, re-read when it changes (cert-manager); needs --kubernetes-front-tls-key and --kubernetes-front-ca ($NEMOCLAVE_K8S_FRONT_TLS_CERT)")
	f.StringVar(&k.FrontKey, "kubernetes-front-tls-key", env("NEMOCLAVE_K8S_FRONT_TLS_KEY", ""), "private key of --kubernetes-front-tls-cert ($NEMOCLAVE_K8S_FRONT_TLS_KEY)")
	f.StringVar(&k.FrontCA, "kubernetes-front-ca", env("NEMOCLAVE_K8S_FRONT_CA", ""), "CA (PEM) sandbox pods verify the Front's certificate with ($NEMOCLAVE_K8S_FRONT_CA)")
	f.StringArrayVar(&k.Tolerations, "kubernetes-toleration", splitList(env("NEMOCLAVE_K8S_TOLERATIONS", "")), "let sandbox pods onto nodes with this taint, written as the taint: key=value:Effect or key:Effect (repeatable; $NEMOCLAVE_K8S_TOLERATIONS, comma-separated)")
	f.StringVar(&k.SchedulingFile, "kubernetes-scheduling-file", env("NEMOCLAVE_K8S_SCHEDULING_FILE", ""), "YAML or JSON file with nodeSelector, tolerations, affinity and topologySpreadConstraints for sandbox pods, as in a pod spec ($NEMOCLAVE_K8S_SCHEDULING_FILE)")
	f.StringVar(&k.CredentialsSecret, "kubernetes-credentials-secret", env("NEMOCLAVE_K8S_CREDENTIALS_SECRET", ""), "namespace/name of a Secret whose keys are provider credentials, looked up before the other stores ($NEMOCLAVE_K8S_CREDENTIALS_SECRET)")
	f.BoolVar(&k.Controller, "kubernetes-controller", env("NEMOCLAVE_K8S_CONTROLLER", "") == "true", "reconcile AgentEnvironment resources (deploy/crds) while this replica holds the leader Lease ($NEMOCLAVE_K8S_CONTROLLER=true)")
	f.StringVar(&k.LeaseNamespace, "kubernetes-lease-namespace", env("NEMOCLAVE_K8S_LEASE_NAMESPACE", env("POD_NAMESPACE", "")), "namespace of the leader Lease; default $POD_NAMESPACE, else the gateway namespace ($NEMOCLAVE_K8S_LEASE_NAMESPACE)")
	f.StringVar(&k.LeaseName, "kubernetes-lease-name", env("NEMOCLAVE_K8S_LEASE_NAME", "nemoclave-controller"), "name of the leader Lease ($NEMOCLAVE_K8S_LEASE_NAME)")
	dur := 15 * time.Second
	if v := env("NEMOCLAVE_K8S_LEASE_DURATION", ""); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			dur = d
		}
	}
	f.DurationVar(&k.LeaseDuration, "kubernetes-lease-duration", dur, "how long a dead leader's Lease holds before another replica takes over ($NEMOCLAVE_K8S_LEASE_DURATION)")
	f.StringArrayVar(&k.ControllerNamespaces, "kubernetes-controller-namespace", splitList(env("NEMOCLAVE_K8S_CONTROLLER_NAMESPACES", "")), "watch AgentEnvironments only in this namespace (repeatable; $NEMOCLAVE_K8S_CONTROLLER_NAMESPACES, comma-separated; default every namespace)")
	f.StringVar(&k.HealthAddress, "health-probe-address", env("NEMOCLAVE_HEALTH_PROBE_ADDRESS", ""), "serve /healthz and /readyz for the kubelet's probes on this address, e.g. :8081 ($NEMOCLAVE_HEALTH_PROBE_ADDRESS; off when empty)")
}

// splitList splits a comma-separated environment value, dropping empties.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// kubernetesFlagsGiven is nil: this build has the flags it is given.
func kubernetesFlagsGiven(*cobra.Command) []string { return nil }

// kubernetesCommands are the commands only the kubernetes build has: the
// in-pod supervisor.
func kubernetesCommands(g *Globals) []*cobra.Command {
	return []*cobra.Command{newSupervisorCmd(g)}
}

func newSupervisorCmd(_ *Globals) *cobra.Command {
	return &cobra.Command{
		Use:    sbk8s.SupervisorCommand + " run | exec [--env K=V]... -- CMD...",
		Short:  "Supervise the agent inside a Kubernetes sandbox pod (run by the pod, not by people)",
		Hidden: true,
		// Flags belong to the command it runs.
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if code := sbk8s.RunSupervisor(args); code != 0 {
				return &ExitError{Code: code}
			}
			return nil
		},
	}
}
