//go:build kubernetes

package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/go-logr/logr"

	"github.com/nemoclave/nemoclave/sandbox"
)

// Options configure the controller of a daemon replica.
type Options struct {
	Config  *rest.Config
	Runtime Runtime
	Driver  sandbox.Driver
	Home    string
	// Identity names this replica in the Lease and in status.reconciledBy;
	// default $POD_NAME, else hostname_pid.
	Identity string
	// LeaseNamespace and LeaseName locate the coordination.k8s.io Lease
	// the replicas elect a leader with.
	LeaseNamespace, LeaseName string
	// LeaseDuration is how long a dead leader's Lease blocks the others
	// (default 15 s); renew and retry periods follow from it.
	LeaseDuration time.Duration
	// HealthAddress serves /healthz (the process answers) and /readyz (the
	// controller's caches are synced) for the kubelet's probes; empty
	// serves none.
	HealthAddress string
	// Namespaces limits the AgentEnvironments (and the ConfigMaps they
	// name) the controller watches; empty watches every namespace.
	Namespaces []string
	Logger     *slog.Logger
}

// Controller is a started AgentEnvironment controller.
type Controller struct {
	identity string
	elected  <-chan struct{}
	done     chan error
}

// Identity is this replica's name in the Lease.
func (c *Controller) Identity() string { return c.identity }

// Elected is closed once this replica holds the Lease.
func (c *Controller) Elected() <-chan struct{} { return c.elected }

// Done delivers the manager's end: nil after ctx ended, an error when the
// Lease was lost (the daemon must exit then; a replica that lost the Lease
// may not keep acting as leader).
func (c *Controller) Done() <-chan error { return c.done }

// Start runs the controller until ctx ends. Every replica runs one; only
// the holder of the Lease reconciles.
func Start(ctx context.Context, o Options) (*Controller, error) {
	if o.Identity == "" {
		o.Identity = os.Getenv("POD_NAME")
	}
	if o.Identity == "" {
		host, _ := os.Hostname()
		o.Identity = fmt.Sprintf("%s_%d", host, os.Getpid())
	}
	if o.LeaseName == "" {
		o.LeaseName = "nemoclave-controller"
	}
	if o.LeaseNamespace == "" {
		return nil, errors.New("controller: no namespace for the leader Lease: pass --kubernetes-lease-namespace (the daemon's own namespace)")
	}
	if o.LeaseDuration <= 0 {
		o.LeaseDuration = 15 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	// controller-runtime logs through logr; hand it the daemon's slog.
	log.SetLogger(logr.FromSlogHandler(o.Logger.Handler()))

	scheme := k8sruntime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := AddToScheme(scheme); err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(o.Config)
	if err != nil {
		return nil, err
	}
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, o.LeaseNamespace, o.LeaseName,
		cs.CoreV1(), cs.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: o.Identity})
	if err != nil {
		return nil, err
	}
	renew, retry := o.LeaseDuration*2/3, o.LeaseDuration/5
	healthAddr := o.HealthAddress
	if healthAddr == "" {
		healthAddr = "0"
	}
	var cacheOpts cache.Options
	if len(o.Namespaces) > 0 {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range o.Namespaces {
			cacheOpts.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	mgr, err := ctrl.NewManager(o.Config, ctrl.Options{
		Scheme:                              scheme,
		Cache:                               cacheOpts,
		LeaderElection:                      true,
		LeaderElectionResourceLockInterface: lock,
		LeaderElectionID:                    o.LeaseName,
		LeaderElectionNamespace:             o.LeaseNamespace,
		LeaseDuration:                       &o.LeaseDuration,
		RenewDeadline:                       &renew,
		RetryPeriod:                         &retry,
		// A replica that stops (a rolling update) hands the Lease over at
		// once instead of making the next leader wait LeaseDuration.
		LeaderElectionReleaseOnCancel: true,
		HealthProbeBindAddress:        healthAddr,
		Metrics:                       metricsserver.Options{BindAddress: "0"}, // the daemon's --metrics-listen serves metrics
	})
	if err != nil {
		return nil, fmt.Errorf("controller: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return nil, err
	}
	// Ready once the caches have synced: every replica serves the gateway,
	// so readiness must not wait for the Lease.
	if err := mgr.AddReadyzCheck("caches", func(req *http.Request) error {
		if !mgr.GetCache().WaitForCacheSync(req.Context()) {
			return errors.New("caches not synced")
		}
		return nil
	}); err != nil {
		return nil, err
	}
	r := &Reconciler{
		Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Runtime: o.Runtime, Driver: o.Driver,
		Home: o.Home, Identity: o.Identity, Events: mgr.GetEventRecorder("nemoclave-controller"),
	}
	err = ctrl.NewControllerManagedBy(mgr).
		For(&AgentEnvironment{}).
		// A ConfigMap a resource names brings that resource back.
		Watches(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			var list AgentEnvironmentList
			if err := mgr.GetClient().List(ctx, &list, client.InNamespace(o.GetNamespace())); err != nil {
				return nil
			}
			var out []reconcile.Request
			for _, ae := range list.Items {
				if ref := ae.Spec.ConfigMapRef; ref != nil && ref.Name == o.GetName() {
					out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&ae)})
				}
			}
			return out
		})).
		Named("agentenvironment").
		Complete(r)
	if err == nil {
		err = serveOnEveryReplica(mgr, o, r)
	}
	if err != nil {
		if meta.IsNoMatchError(err) {
			return nil, fmt.Errorf("controller: the AgentEnvironment CRD is not installed: kubectl apply -f deploy/crds/agentenvironments.yaml: %w", err)
		}
		return nil, fmt.Errorf("controller: %w", err)
	}
	c := &Controller{identity: o.Identity, elected: mgr.Elected(), done: make(chan error, 1)}
	go func() { c.done <- mgr.Start(ctx) }()
	o.Logger.Info("AgentEnvironment controller started; waiting for the leader Lease", "lease", o.LeaseNamespace+"/"+o.LeaseName, "identity", o.Identity)
	go func() {
		select {
		case <-c.elected:
			o.Logger.Info("this replica leads: reconciling AgentEnvironments", "identity", o.Identity)
		case <-ctx.Done():
		}
	}()
	return c, nil
}

// serveOnEveryReplica adds the controller that makes this replica's
// gateway serve every resource's running sandboxes (serving); unlike the
// reconciler it runs without the Lease.
func serveOnEveryReplica(mgr ctrl.Manager, o Options, r *Reconciler) error {
	srv, ok := o.Runtime.(Server)
	pods, ok2 := o.Driver.(podUIDs)
	if !ok || !ok2 {
		return nil
	}
	s := &serving{reader: mgr.GetClient(), src: r, server: srv, pods: pods, home: o.Home, log: o.Logger,
		served: map[types.NamespacedName]servedSet{}}
	return ctrl.NewControllerManagedBy(mgr).
		For(&AgentEnvironment{}).
		Named("agentenvironment-serving").
		WithOptions(controller.Options{NeedLeaderElection: ptr.To(false)}).
		Complete(s)
}
