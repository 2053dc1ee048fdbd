package runtime

import (
	"context"
	"fmt"
	"strings"

	"github.com/nemoclave/nemoclave/blueprints"
)

// KubernetesBuild is the binary that carries the kubernetes sandbox
// driver and the Secret credential backend (`make build-k8s`, and the
// container image). The default build leaves client-go out.
const KubernetesBuild = "nemoclave-k8s"

// DriverUnavailable is the one explanation of a sandbox driver a daemon
// does not offer, shared by the daemon's own check and validate's. have
// lists the drivers there are.
func DriverUnavailable(name string, have []string) error {
	msg := fmt.Sprintf("this daemon has no %q sandbox driver (it has: %s)", name, strings.Join(have, ", "))
	if name != blueprints.DriverKubernetes {
		return fmt.Errorf("%s; use one of those", msg)
	}
	return fmt.Errorf("%s. A daemon offers the kubernetes driver when it is the %s build and has a cluster: set NEMOCLAVE_KUBECONFIG to a kubeconfig (the daemon `nemoclave run` starts reads it), or run it in a pod with NEMOCLAVE_K8S_IMAGE set; then stop the running daemon (`nemoclave daemon stop`) so the next run starts one that reads them", msg, KubernetesBuild)
}

// blueprintHost answers the blueprint language's host checks from what
// this daemon actually has, so `run` refuses exactly what `validate`
// reports, with the same located diagnostics.
type blueprintHost struct{ r *Runtime }

func (h blueprintHost) CheckDriver(name string) error {
	if _, ok := h.r.drivers[name]; ok {
		return nil
	}
	return DriverUnavailable(name, sortedKeys(h.r.drivers))
}

// CheckCredential resolves the credential as the launch will, and throws
// the value away.
func (h blueprintHost) CheckCredential(_ context.Context, name string) error {
	_, err := h.r.opts.Credential(name)
	return err
}
