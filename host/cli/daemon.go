package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/nemoclave/nemoclave/host/daemon"
	"github.com/nemoclave/nemoclave/host/daemon/serve"
	"github.com/nemoclave/nemoclave/host/runtime"
)

func newDaemonCmd(g *Globals) *cobra.Command {
	// The flags fill the daemon's configuration (host/daemon/serve).
	var cfg serve.Config
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run the daemon that holds plugins, the gateway and sandboxes",
		Long: `The daemon owns every running sandbox, its plugins and its gateway. The CLI
starts it on demand and talks to it on $NEMOCLAVE_HOME/run/nemoclave.sock.
Run it in the foreground yourself only to watch its log.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Home = g.Home
			if v := os.Getenv("NEMOCLAVE_PLUGIN_IDLE_TTL"); v != "" && !cmd.Flags().Changed("plugin-idle-ttl") {
				d, err := time.ParseDuration(v)
				if err != nil {
					return fmt.Errorf("$NEMOCLAVE_PLUGIN_IDLE_TTL=%q is not a duration (e.g. 60s, 5m, 0 for off): %w", v, err)
				}
				cfg.PluginIdleTTL = d
			}
			if cfg.PluginIdleTTL < 0 {
				return fmt.Errorf("--plugin-idle-ttl %s is negative; give a duration such as 60s, or 0 to stop plugin processes with their last run", cfg.PluginIdleTTL)
			}
			cfg.Kubernetes.FlagsGiven = kubernetesFlagsGiven(cmd)
			return serve.Run(cmd.Context(), cfg)
		},
	}
	addKubernetesDaemonFlags(cmd, &cfg.Kubernetes)
	cmd.Flags().StringVar(&cfg.StateURL, "state-url", os.Getenv("NEMOCLAVE_STATE_URL"), "state database: empty for $NEMOCLAVE_HOME/state.db (SQLite), or postgres://user@host/db for PostgreSQL ($NEMOCLAVE_STATE_URL)")
	cmd.Flags().StringVar(&cfg.UpstreamProxy, "upstream-proxy", runtime.EnvUpstreamProxy(), "corporate proxy (http://[user:pass@]host:port) that the egress gateway sends allowed connections through with CONNECT ($NEMOCLAVE_UPSTREAM_PROXY, else $HTTPS_PROXY; direct when empty)")
	cmd.Flags().StringVar(&cfg.NoProxy, "no-proxy", runtime.EnvNoProxy(), "hosts dialled directly despite --upstream-proxy, in NO_PROXY syntax: names, .domain suffixes, IPs, CIDRs ($NEMOCLAVE_NO_PROXY, else $NO_PROXY)")
	cmd.Flags().StringVar(&cfg.UpstreamCAFile, "upstream-ca-file", os.Getenv("NEMOCLAVE_UPSTREAM_CA_FILE"), "PEM bundle of a corporate CA (a TLS-inspecting proxy) trusted for upstream TLS and added to every sandbox's trust bundle ($NEMOCLAVE_UPSTREAM_CA_FILE)")
	cmd.Flags().BoolVar(&cfg.AllowUnconfinedPlugins, "allow-unconfined-plugins", envTrue("NEMOCLAVE_ALLOW_UNCONFINED_PLUGINS"), "let plugin blocks with confine = false run outside a plugin box, with the daemon's files and network (audited; $NEMOCLAVE_ALLOW_UNCONFINED_PLUGINS=1); refused otherwise")
	cmd.Flags().DurationVar(&cfg.PluginIdleTTL, "plugin-idle-ttl", time.Minute, "keep a plugin process whose last run ended this long, so the next run with the same plugin block and configuration reuses it instead of launching one; 0 stops it with its last run ($NEMOCLAVE_PLUGIN_IDLE_TTL)")
	cmd.Flags().StringVar(&cfg.Remote.Addr, "listen", os.Getenv("NEMOCLAVE_LISTEN"), "also serve the API remotely on this TCP address with TLS, e.g. 0.0.0.0:7443; callers sign in with OIDC (see --access-file) ($NEMOCLAVE_LISTEN; off when empty)")
	cmd.Flags().StringVar(&cfg.Remote.CertFile, "tls-cert", os.Getenv("NEMOCLAVE_TLS_CERT"), "PEM certificate of --listen; without it and --tls-key a self-signed one is kept in $NEMOCLAVE_HOME/tls and its fingerprint printed")
	cmd.Flags().StringVar(&cfg.Remote.KeyFile, "tls-key", os.Getenv("NEMOCLAVE_TLS_KEY"), "PEM private key of --tls-cert")
	cmd.Flags().StringVar(&cfg.Remote.AccessFile, "access-file", "", "OIDC issuer and role grants for --listen (default $NEMOCLAVE_HOME/access.hcl)")
	cmd.Flags().StringVar(&cfg.MetricsListen, "metrics-listen", os.Getenv("NEMOCLAVE_METRICS_LISTEN"), "serve the gateway's Prometheus metrics on this address, e.g. 127.0.0.1:9464 ($NEMOCLAVE_METRICS_LISTEN; off when empty)")
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
