//go:build kubernetes

package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"k8s.io/client-go/rest"

	"github.com/nemoclave/nemoclave/host/controller"
	"github.com/nemoclave/nemoclave/host/runtime"
	"github.com/nemoclave/nemoclave/sandbox"
)

// withRuntimeHook starts the controller (or only the probes) once the
// runtime serves.
func withRuntimeHook(k KubernetesConfig, cfg *rest.Config, d sandbox.Driver, home, gatewayNamespace string, logger *slog.Logger) func(context.Context, *runtime.Runtime) error {
	return func(ctx context.Context, rt *runtime.Runtime) error {
		if !k.Controller {
			return serveProbes(ctx, k.HealthAddress, logger)
		}
		ns := k.LeaseNamespace
		if ns == "" {
			ns = gatewayNamespace
		}
		c, err := controller.Start(ctx, controller.Options{
			Config: cfg, Runtime: rt, Driver: d, Home: home,
			LeaseNamespace: ns, LeaseName: k.LeaseName, LeaseDuration: k.LeaseDuration,
			HealthAddress: k.HealthAddress, Namespaces: k.ControllerNamespaces, Logger: logger,
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
