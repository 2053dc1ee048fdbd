package cli

import (
	"context"

	"github.com/nemoclave/nemoclave/blueprints"
	"github.com/nemoclave/nemoclave/host/credentials"
	"github.com/nemoclave/nemoclave/host/daemon/serve"
	"github.com/nemoclave/nemoclave/host/runtime"
)

// validateHost answers validate's and plan's host checks for the daemon
// `nemoclave run` would use, without starting one. That daemon is started
// on demand with no flags, so its configuration is the environment this
// command inherits: the credential store under --home (credentials.json,
// then the environment, and on the kubernetes build the Secret named by
// $NEMOCLAVE_K8S_CREDENTIALS_SECRET), and a kubernetes driver only on the
// kubernetes build with $NEMOCLAVE_KUBECONFIG (or in a pod with
// $NEMOCLAVE_K8S_IMAGE). The daemon asks the same questions of what it
// really has when it evaluates the blueprint for `run`, so a daemon started
// by hand with other flags still refuses exactly what it cannot run.
type validateHost struct {
	store credentials.Backend
}

func newValidateHost(ctx context.Context, home string) (blueprints.Host, error) {
	store, err := serve.CredentialStore(ctx, home)
	if err != nil {
		return nil, err
	}
	return validateHost{store: store}, nil
}

func (h validateHost) CheckDriver(name string) error {
	switch name {
	case blueprints.DriverLocal:
		return nil
	case blueprints.DriverKubernetes:
		return serve.KubernetesAvailable()
	}
	return runtime.DriverUnavailable(name, []string{blueprints.DriverLocal})
}

// CheckCredential looks the name up and drops the value unread.
func (h validateHost) CheckCredential(ctx context.Context, name string) error {
	_, err := h.store.Get(ctx, name)
	return err
}
