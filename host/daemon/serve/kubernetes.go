package serve

import (
	"context"
	"time"

	"github.com/nemoclave/nemoclave/host/runtime"
	"github.com/nemoclave/nemoclave/sandbox"
)

// KubernetesConfig is how the daemon gets a kubernetes driver. The daemon
// creates one, beside the local driver, when it has a cluster to talk to:
// Kubeconfig, or the in-cluster service account together with Image (the
// Deployment in deploy/ passes both). The CLI fills it from the daemon's
// --kubernetes-* flags and their environment variables.
//
// Only the kubernetes build (-tags kubernetes) has the driver; the default
// build links no client-go and refuses a daemon that asks for a cluster.
type KubernetesConfig struct {
	Kubeconfig, Namespace, Image, RuntimeClass, StorageClass, WorkspaceSize string
	GatewayNamespace, GatewayService, GatewayAddress, FrontAddress          string
	Audience, CredentialsSecret                                             string
	FrontCert, FrontKey, FrontCA                                            string
	// Tolerations (kubectl taint syntax) and SchedulingFile (pod spec
	// shape) place the sandbox pods; see sbk8s.ParseToleration and
	// sbk8s.LoadScheduling.
	Tolerations    []string
	SchedulingFile string

	// The AgentEnvironment controller and the probes of a daemon replica.
	// Every replica serves the gateway; with Controller they also elect a
	// leader with a coordination.k8s.io Lease, and the leader alone
	// reconciles AgentEnvironment resources through its runtime.
	Controller           bool
	LeaseNamespace       string
	LeaseName            string
	LeaseDuration        time.Duration
	HealthAddress        string
	ControllerNamespaces []string

	// FlagsGiven are the kubernetes flags given to a build without the
	// driver ("--kubeconfig", …): that build names them when it refuses
	// to start.
	FlagsGiven []string
}

// kubernetesSetup is what Run takes from the cluster: the drivers for
// runtime.Options (nil: the runtime's default, local only) and the
// credential lookup and redactor wrapped to consult the Secret first. The
// kubernetes build fills it (kubernetes_on.go); the default build has no
// cluster to take anything from (kubernetes_off.go).
type kubernetesSetup struct {
	drivers map[string]sandbox.Driver
	wrap    func(lookup func(string) (string, error), redact func(string) string) (func(string) (string, error), func(string) string)
	// withRuntime, when set, starts what needs the running runtime (the
	// AgentEnvironment controller, the probes) once the daemon serves.
	withRuntime func(ctx context.Context, rt *runtime.Runtime) error
}

func noKubernetes() kubernetesSetup {
	return kubernetesSetup{wrap: func(l func(string) (string, error), r func(string) string) (func(string) (string, error), func(string) string) {
		return l, r
	}}
}
