package cli

import (
	"net"
	"net/http"
	"time"

	"context"
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/nemoclave/nemoclave/host/daemon"
	"github.com/nemoclave/nemoclave/host/runtime"
)

// metricsListen is --metrics-listen; stateURL is --state-url.
var metricsListen, stateURL string

// upstreamProxy, noProxy and upstreamCAFile are --upstream-proxy,
// --no-proxy and --upstream-ca-file: the corporate network the egress
// gateway dials allowed hosts through.
var upstreamProxy, noProxy, upstreamCAFile string

// allowUnconfinedPlugins is --allow-unconfined-plugins: a blueprint's
// confine = false takes effect instead of being refused.
var allowUnconfinedPlugins bool

// remoteOpts are --listen, --tls-cert, --tls-key and --access-file: the
// remote API (TCP, TLS, OIDC bearer tokens).
var remoteOpts daemon.RemoteOptions

// daemonCredentials supplies the daemon's credential lookup and redactor.
// The credential store (host/credentials) replaces the environment-only
// default.
var daemonCredentials = func(home string) (lookup func(string) (string, error), redact func(string) string, err error) {
	return nil, nil, nil
}

func newDaemonCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run the daemon that holds plugins, the gateway and sandboxes",
		Long: `The daemon owns every running sandbox, its plugins and its gateway. The CLI
starts it on demand and talks to it on $NEMOCLAVE_HOME/run/nemoclave.sock.
Run it in the foreground yourself only to watch its log.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return serveDaemon(cmd.Context(), g.Home)
		},
	}
	addKubernetesDaemonFlags(cmd)
	cmd.Flags().StringVar(&stateURL, "state-url", os.Getenv("NEMOCLAVE_STATE_URL"), "state database: empty for $NEMOCLAVE_HOME/state.db (SQLite), or postgres://user@host/db for PostgreSQL ($NEMOCLAVE_STATE_URL)")
	cmd.Flags().StringVar(&upstreamProxy, "upstream-proxy", runtime.EnvUpstreamProxy(), "corporate proxy (http://[user:pass@]host:port) that the egress gateway sends allowed connections through with CONNECT ($NEMOCLAVE_UPSTREAM_PROXY, else $HTTPS_PROXY; direct when empty)")
	cmd.Flags().StringVar(&noProxy, "no-proxy", runtime.EnvNoProxy(), "hosts dialled directly despite --upstream-proxy, in NO_PROXY syntax: names, .domain suffixes, IPs, CIDRs ($NEMOCLAVE_NO_PROXY, else $NO_PROXY)")
	cmd.Flags().StringVar(&upstreamCAFile, "upstream-ca-file", os.Getenv("NEMOCLAVE_UPSTREAM_CA_FILE"), "PEM bundle of a corporate CA (a TLS-inspecting proxy) trusted for upstream TLS and added to every sandbox's trust bundle ($NEMOCLAVE_UPSTREAM_CA_FILE)")
	cmd.Flags().BoolVar(&allowUnconfinedPlugins, "allow-unconfined-plugins", envTrue("NEMOCLAVE_ALLOW_UNCONFINED_PLUGINS"), "let plugin blocks with confine = false run outside a plugin box, with the daemon's files and network (audited; $NEMOCLAVE_ALLOW_UNCONFINED_PLUGINS=1); refused otherwise")
	cmd.Flags().StringVar(&remoteOpts.Addr, "listen", os.Getenv("NEMOCLAVE_LISTEN"), "also serve the API remotely on this TCP address with TLS, e.g. 0.0.0.0:7443; callers sign in with OIDC (see --access-file) ($NEMOCLAVE_LISTEN; off when empty)")
	cmd.Flags().StringVar(&remoteOpts.CertFile, "tls-cert", os.Getenv("NEMOCLAVE_TLS_CERT"), "PEM certificate of --listen; without it and --tls-key a self-signed one is kept in $NEMOCLAVE_HOME/tls and its fingerprint printed")
	cmd.Flags().StringVar(&remoteOpts.KeyFile, "tls-key", os.Getenv("NEMOCLAVE_TLS_KEY"), "PEM private key of --tls-cert")
	cmd.Flags().StringVar(&remoteOpts.AccessFile, "access-file", "", "OIDC issuer and role grants for --listen (default $NEMOCLAVE_HOME/access.hcl)")
	cmd.Flags().StringVar(&metricsListen, "metrics-listen", os.Getenv("NEMOCLAVE_METRICS_LISTEN"), "serve the gateway's Prometheus metrics on this address, e.g. 127.0.0.1:9464 ($NEMOCLAVE_METRICS_LISTEN; off when empty)")
	cmd.AddCommand(&cobra.Command{
		Use:   "stop",
		Short: "Stop the daemon, every sandbox and every plugin",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := daemon.Connect(cmd.Context(), g.Home, false)
			if errors.Is(err, daemon.ErrNotRunning) {
				fmt.Fprintln(cmd.OutOrStdout(), "the daemon is not running")
				return nil
			}
			if err != nil {
				return err
			}
			defer c.Close()
			if err := c.Shutdown(cmd.Context()); err != nil {
				return err
			}
			// The daemon answers before it has stopped its sandboxes
			// and plugins; it holds its lock until it has. Return when
			// it has really stopped, so that a script may remove the
			// home or start another daemon right after.
			deadline := time.Now().Add(time.Minute)
			for {
				held, pid := daemon.LockHeld(g.Home)
				if !held {
					break
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("the daemon (pid %s) was asked to stop but is still running after a minute; see %s", pid, filepath.Join(g.Home, "logs", "daemon.log"))
				}
				time.Sleep(50 * time.Millisecond)
			}
			fmt.Fprintln(cmd.OutOrStdout(), "daemon stopped")
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "status",
		Short: "Say whether the daemon runs, with its pid and version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := daemon.Connect(cmd.Context(), g.Home, false)
			if err != nil {
				return err
			}
			defer c.Close()
			p, err := c.Ping(cmd.Context())
			if err != nil {
				return err
			}
			if c.Warning != "" {
				fmt.Fprintln(cmd.ErrOrStderr(), c.Warning)
			}
			return Render(cmd.OutOrStdout(), g.Output, map[string]any{"pid": p.Pid, "version": p.Version, "build_id": p.BuildId, "active_sandboxes": p.ActiveSandboxes, "home": p.Home}, func(tw tabWriter) {
				fmt.Fprintf(tw, "running\tpid %d\tversion %s\tsandboxes %d\thome %s\n", p.Pid, daemon.VersionString(p.Version, p.BuildId), p.ActiveSandboxes, p.Home)
			})
		},
	})
	return cmd
}

func serveDaemon(ctx context.Context, home string) error {
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
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	k8s, err := setupDaemonKubernetes(ctx, home, logger)
	if err != nil {
		return err
	}
	lookup, redact = k8s.wrap(lookup, redact)
	tp, stopTracing, err := daemonTracing(ctx)
	if err != nil {
		return err
	}
	defer stopTracing()
	rt, err := runtime.New(ctx, runtime.Options{Home: home, StateURL: stateURL, TracerProvider: tp, Credential: lookup, Redact: redact, Logger: logger, Drivers: k8s.drivers, ConfinePlugins: true, AllowUnconfinedPlugins: allowUnconfinedPlugins,
		UpstreamProxy: upstreamProxy, UpstreamNoProxy: noProxy, UpstreamCAFile: upstreamCAFile})
	if err != nil {
		return err
	}
	srv, err := daemon.Listen(home, rt)
	if err != nil {
		rt.Close(context.Background())
		return err
	}
	if remoteOpts.Addr != "" {
		rem, err := srv.ListenRemote(remoteOpts)
		if err != nil {
			rt.Close(context.Background())
			return err
		}
		if rem.SelfSigned {
			fmt.Fprintf(os.Stderr, "remote API on %s with a self-signed certificate, fingerprint %s\nclients: nemoclave login --server https://%s --fingerprint %s\n", rem.Addr, rem.Fingerprint, rem.Addr, rem.Fingerprint)
		}
		logger.Info("remote API serving", "addr", rem.Addr, "fingerprint", rem.Fingerprint, "self_signed", rem.SelfSigned)
	}
	if k8s.withRuntime != nil {
		if err := k8s.withRuntime(ctx, rt); err != nil {
			rt.Close(context.Background())
			return err
		}
	}
	if metricsListen != "" {
		ln, err := net.Listen("tcp", metricsListen)
		if err != nil {
			rt.Close(context.Background())
			return fmt.Errorf("--metrics-listen %s: %w", metricsListen, err)
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

// connect returns a daemon client, starting the daemon if needed.
func connect(ctx context.Context, g *Globals) (*daemon.Client, error) {
	c, err := daemon.Connect(ctx, g.Home, true)
	if err == nil && c.Warning != "" {
		fmt.Fprintln(os.Stderr, c.Warning)
	}
	return c, err
}

func envTrue(name string) bool {
	v := os.Getenv(name)
	return v == "1" || v == "true"
}
