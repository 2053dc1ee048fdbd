package serve

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/nemoclave/nemoclave/host/daemon"
	"github.com/nemoclave/nemoclave/host/runtime"
)

// Config is what `nemoclave daemon` is started with.
type Config struct {
	// Home is $NEMOCLAVE_HOME; it is created (0700) when missing.
	Home string
	// StateURL is the state database: empty for Home/state.db (SQLite),
	// or postgres://user@host/db.
	StateURL string
	// MetricsListen, when set, serves the gateway's Prometheus metrics
	// on this TCP address.
	MetricsListen string
	// UpstreamProxy, NoProxy and UpstreamCAFile are the corporate network
	// the egress gateway dials allowed hosts through.
	UpstreamProxy, NoProxy, UpstreamCAFile string
	// AllowUnconfinedPlugins lets a blueprint's confine = false take
	// effect instead of being refused.
	AllowUnconfinedPlugins bool
	// PluginIdleTTL keeps a plugin process whose last run ended for this
	// long, for the next run with the same plugin launch; 0 stops it with
	// its last run.
	PluginIdleTTL time.Duration
	// Remote is the remote API (TCP, TLS, OIDC bearer tokens); off when
	// its Addr is empty.
	Remote daemon.RemoteOptions
	// Kubernetes configures the kubernetes driver and controller.
	Kubernetes KubernetesConfig
	// Stderr receives what the operator must see (the remote API's
	// certificate fingerprint) and the JSON log; os.Stderr when nil.
	Stderr io.Writer
}

// Run serves the daemon of cfg.Home until ctx ends or a client asks it to
// stop, then stops every sandbox and plugin it started. One daemon per
// home: Run fails when another holds the home's lock.
func Run(ctx context.Context, cfg Config) error {
	home := cfg.Home
	stderr := cfg.Stderr
	if stderr == nil {
		stderr = os.Stderr
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return err
	}
	// One daemon per home, decided before anything reads or reconciles
	// state: a second daemon would mark the first one's sandboxes lost.
	lock, err := daemon.AcquireLock(home)
	if err != nil {
		return err
	}
	defer lock.Release()
	lookup, redact, err := daemonCredentials(home)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(stderr, nil))
	k8s, err := setupKubernetes(ctx, home, cfg.Kubernetes, logger)
	if err != nil {
		return err
	}
	lookup, redact = k8s.wrap(lookup, redact)
	tp, stopTracing, err := tracing(ctx)
	if err != nil {
		return err
	}
	defer stopTracing()
	rt, err := runtime.New(ctx, runtime.Options{Home: home, StateURL: cfg.StateURL, TracerProvider: tp, Credential: lookup, Redact: redact, Logger: logger, Drivers: k8s.drivers, ConfinePlugins: true, AllowUnconfinedPlugins: cfg.AllowUnconfinedPlugins, PluginIdleTTL: cfg.PluginIdleTTL,
		UpstreamProxy: cfg.UpstreamProxy, UpstreamNoProxy: cfg.NoProxy, UpstreamCAFile: cfg.UpstreamCAFile})
	if err != nil {
		return err
	}
	srv, err := daemon.Listen(home, rt)
	if err != nil {
		rt.Close(context.Background())
		return err
	}
	if cfg.Remote.Addr != "" {
		rem, err := srv.ListenRemote(cfg.Remote)
		if err != nil {
			rt.Close(context.Background())
			return err
		}
		if rem.SelfSigned {
			fmt.Fprintf(stderr, "remote API on %s with a self-signed certificate, fingerprint %s\nclients: nemoclave login --server https://%s --fingerprint %s\n", rem.Addr, rem.Fingerprint, rem.Addr, rem.Fingerprint)
		}
		logger.Info("remote API serving", "addr", rem.Addr, "fingerprint", rem.Fingerprint, "self_signed", rem.SelfSigned)
	}
	if k8s.withRuntime != nil {
		if err := k8s.withRuntime(ctx, rt); err != nil {
			rt.Close(context.Background())
			return err
		}
	}
	if cfg.MetricsListen != "" {
		ln, err := net.Listen("tcp", cfg.MetricsListen)
		if err != nil {
			rt.Close(context.Background())
			return fmt.Errorf("--metrics-listen %s: %w", cfg.MetricsListen, err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(rt.Registry(), promhttp.HandlerOpts{}))
		ms := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = ms.Serve(ln) }()
		defer ms.Close()
		logger.Info("metrics serving", "addr", ln.Addr().String())
	}
	if err := os.WriteFile(filepath.Join(home, "run", "daemon.pid"), []byte(fmt.Sprintln(os.Getpid())), 0o600); err != nil {
		logger.Warn("cannot write pid file", "err", err)
	}
	logger.Info("daemon serving", "socket", daemon.SocketPath(home), "pid", os.Getpid())
	err = srv.Serve(ctx)
	_ = os.Remove(filepath.Join(home, "run", "daemon.pid"))
	return err
}
