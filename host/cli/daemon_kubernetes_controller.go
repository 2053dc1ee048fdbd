//go:build kubernetes

package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"

	"github.com/nemoclave/nemoclave/host/controller"
	"github.com/nemoclave/nemoclave/host/runtime"
	"github.com/nemoclave/nemoclave/sandbox"
)

// The AgentEnvironment controller and the probes of a daemon replica. Every
// replica serves the gateway; with --kubernetes-controller they also elect a
// leader with a coordination.k8s.io Lease, and the leader alone reconciles
// AgentEnvironment resources through its runtime.
type controllerFlags struct {
	enabled        bool
	leaseNamespace string
	leaseName      string
	leaseDuration  time.Duration
	healthAddress  string
	namespaces     []string
}

var ctrlFlags controllerFlags

func addControllerFlags(f *pflag.FlagSet, env func(name, def string) string) {
	f.BoolVar(&ctrlFlags.enabled, "kubernetes-controller", env("NEMOCLAVE_K8S_CONTROLLER", "") == "true", "reconcile AgentEnvironment resources (deploy/crds) while this replica holds the leader Lease ($NEMOCLAVE_K8S_CONTROLLER=true)")
	f.StringVar(&ctrlFlags.leaseNamespace, "kubernetes-lease-namespace", env("NEMOCLAVE_K8S_LEASE_NAMESPACE", env("POD_NAMESPACE", "")), "namespace of the leader Lease; default $POD_NAMESPACE, else the gateway namespace ($NEMOCLAVE_K8S_LEASE_NAMESPACE)")
	f.StringVar(&ctrlFlags.leaseName, "kubernetes-lease-name", env("NEMOCLAVE_K8S_LEASE_NAME", "nemoclave-controller"), "name of the leader Lease ($NEMOCLAVE_K8S_LEASE_NAME)")
	dur := 15 * time.Second
	if v := env("NEMOCLAVE_K8S_LEASE_DURATION", ""); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			dur = d
		}
	}
	f.DurationVar(&ctrlFlags.leaseDuration, "kubernetes-lease-duration", dur, "how long a dead leader's Lease holds before another replica takes over ($NEMOCLAVE_K8S_LEASE_DURATION)")
	f.StringArrayVar(&ctrlFlags.namespaces, "kubernetes-controller-namespace", splitList(env("NEMOCLAVE_K8S_CONTROLLER_NAMESPACES", "")), "watch AgentEnvironments only in this namespace (repeatable; $NEMOCLAVE_K8S_CONTROLLER_NAMESPACES, comma-separated; default every namespace)")
	f.StringVar(&ctrlFlags.healthAddress, "health-probe-address", env("NEMOCLAVE_HEALTH_PROBE_ADDRESS", ""), "serve /healthz and /readyz for the kubelet's probes on this address, e.g. :8081 ($NEMOCLAVE_HEALTH_PROBE_ADDRESS; off when empty)")
}

// withRuntimeHook starts the controller (or only the probes) once the
// runtime serves.
func withRuntimeHook(cfg *rest.Config, d sandbox.Driver, home, gatewayNamespace string, logger *slog.Logger) func(context.Context, *runtime.Runtime) error {
	return func(ctx context.Context, rt *runtime.Runtime) error {
		if !ctrlFlags.enabled {
			return serveProbes(ctx, ctrlFlags.healthAddress, logger)
		}
		ns := ctrlFlags.leaseNamespace
		if ns == "" {
			ns = gatewayNamespace
		}
		c, err := controller.Start(ctx, controller.Options{
			Config: cfg, Runtime: rt, Driver: d, Home: home,
			LeaseNamespace: ns, LeaseName: ctrlFlags.leaseName, LeaseDuration: ctrlFlags.leaseDuration,
			HealthAddress: ctrlFlags.healthAddress, Namespaces: ctrlFlags.namespaces, Logger: logger,
		})
		if err != nil {
			return err
		}
		go func() {
			err := <-c.Done()
			if err == nil || ctx.Err() != nil {
				return
			}
			// A replica that lost the Lease must stop acting as leader at
			// once. It exits without the runtime's orderly shutdown, which
			// would delete the sandbox pods the next leader adopts; the
			// kubelet restarts the container.
			logger.Error("the AgentEnvironment controller stopped; exiting so the replica restarts", "err", err.Error())
			os.Exit(1)
		}()
		return nil
	}
}

// serveProbes answers the kubelet without the controller: the daemon is
// ready once its runtime serves, which is when this runs.
func serveProbes(ctx context.Context, addr string, logger *slog.Logger) error {
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--health-probe-address %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }
	mux.HandleFunc("/healthz", ok)
	mux.HandleFunc("/readyz", ok)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Warn("probe server stopped", "err", err.Error())
		}
	}()
	go func() { <-ctx.Done(); _ = srv.Close() }()
	return nil
}
