package cli

import (
	"context"

	"github.com/nemoclave/nemoclave/host/runtime"
	"github.com/nemoclave/nemoclave/sandbox"
)

// daemonKubernetes is what serveDaemon takes from the cluster: the drivers
// for runtime.Options (nil: the runtime's default, local only) and the
// credential lookup and redactor wrapped to consult the Secret first. The
// kubernetes build fills it (daemon_kubernetes.go); the default build has
// no cluster to take anything from (daemon_nokubernetes.go).
type daemonKubernetes struct {
	drivers map[string]sandbox.Driver
	wrap    func(lookup func(string) (string, error), redact func(string) string) (func(string) (string, error), func(string) string)
	// withRuntime, when set, starts what needs the running runtime (the
	// AgentEnvironment controller, the probes) once the daemon serves.
	withRuntime func(ctx context.Context, rt *runtime.Runtime) error
}

func noKubernetes() daemonKubernetes {
	return daemonKubernetes{wrap: func(l func(string) (string, error), r func(string) string) (func(string) (string, error), func(string) string) {
		return l, r
	}}
}
