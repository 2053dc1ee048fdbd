package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/spf13/cobra"
	"golang.org/x/oauth2"

	"github.com/nemoclave/nemoclave/host/daemon"
)

func init() {
	Register(func(g *Globals) *cobra.Command {
		var fingerprint, caFile string
		cmd := &cobra.Command{
			Use:   "login --server URL",
			Short: "Sign in to a remote nemoclave daemon (OIDC device code), so every command works on it",
			Long: `Signs in to a daemon started with 'nemoclave daemon --listen ADDR' and keeps
the server and your token in $NEMOCLAVE_HOME/login.json (mode 0600). From
then on every command talks to that daemon, within your role (viewer,
operator or admin, from the daemon's access.hcl), until 'nemoclave logout'.

You sign in with the OAuth device-code flow of the daemon's OIDC issuer:
the command prints a URL and a code to confirm in a browser, on any device.
For automation, set NEMOCLAVE_TOKEN to a token from your issuer instead; it
is used for every call and never written to disk.

A daemon with a self-signed certificate is pinned by its fingerprint
(--fingerprint, as the daemon printed it when it started); one with a
certificate from a private CA is verified with --ca-file.`,
			Example: `  nemoclave login --server https://nemoclave.example.com:7443
  nemoclave login --server https://10.0.0.5:7443 --fingerprint sha256:3f1c…
  NEMOCLAVE_TOKEN=$(my-issuer-cli token) nemoclave login --server https://nemoclave.example.com:7443`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				server, _ := cmd.Flags().GetString("server")
				return login(cmd.Context(), g, cmd.OutOrStdout(), cmd.ErrOrStderr(), server, fingerprint, caFile)
			},
		}
		cmd.Flags().String("server", "", "the remote daemon: https://host:port (its --listen address)")
		cmd.Flags().StringVar(&fingerprint, "fingerprint", "", "pin the daemon's self-signed certificate: sha256:<hex>, as the daemon printed it")
		cmd.Flags().StringVar(&caFile, "ca-file", "", "PEM bundle of the CA that signed the daemon's certificate")
		_ = cmd.MarkFlagRequired("server")
		return cmd
	})
	Register(func(g *Globals) *cobra.Command {
		return &cobra.Command{
			Use:   "logout",
			Short: "Forget the remote daemon and its token; commands use the local daemon again",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				err := os.Remove(daemon.LoginPath(g.Home))
				if errors.Is(err, os.ErrNotExist) {
					fmt.Fprintln(cmd.OutOrStdout(), "not logged in to a remote daemon")
					return nil
				}
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), "logged out; commands use the local daemon")
				if os.Getenv("NEMOCLAVE_SERVER") != "" {
					fmt.Fprintln(cmd.ErrOrStderr(), "note: NEMOCLAVE_SERVER is set, so commands still go to", os.Getenv("NEMOCLAVE_SERVER"))
				}
				return nil
			},
		}
	})
}

func login(ctx context.Context, g *Globals, out, progress io.Writer, server, fingerprint, caFile string) error {
	addr, err := daemon.NormalizeServer(server)
	if err != nil {
		return err
	}
	l := &daemon.Login{Server: addr, Fingerprint: fingerprint, CAFile: caFile}
	if err := l.CheckTrust(ctx); err != nil {
		return err
	}
	if t := os.Getenv("NEMOCLAVE_TOKEN"); t != "" {
		// Automation: the token stays in the environment.
		l.Token = t
		c, err := daemon.DialRemote(ctx, g.Home, l)
		if err != nil {
			return err
		}
		defer c.Close()
		l.Token = ""
		if err := l.Save(g.Home); err != nil {
			return err
		}
		fmt.Fprintf(out, "logged in to %s as %s (%s) with NEMOCLAVE_TOKEN; it is read from the environment on every call\n", addr, c.Daemon.Caller, c.Daemon.Role)
		return nil
	}
	info, err := daemon.RemoteLoginInfo(ctx, l)
	if err != nil {
		return err
	}
	if info.Issuer == "" {
		return fmt.Errorf("the daemon at %s has no OIDC issuer configured; its admin sets one in access.hcl", addr)
	}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	provider, err := oidc.NewProvider(dctx, info.Issuer)
	cancel()
	if err != nil {
		return fmt.Errorf("the daemon's OIDC issuer %s: %w", info.Issuer, err)
	}
	ep := provider.Endpoint()
	if ep.DeviceAuthURL == "" {
		return fmt.Errorf("the issuer %s offers no device authorization endpoint; enable the device-code grant for client %q, or sign in with NEMOCLAVE_TOKEN", info.Issuer, info.ClientId)
	}
	ep.AuthStyle = oauth2.AuthStyleInParams
	cfg := oauth2.Config{ClientID: info.ClientId, Endpoint: ep, Scopes: append([]string{oidc.ScopeOpenID, oidc.ScopeOfflineAccess}, info.Scopes...)}
	da, err := cfg.DeviceAuth(ctx)
	if err != nil {
		return fmt.Errorf("start the device-code sign-in at %s: %w", ep.DeviceAuthURL, err)
	}
	if da.VerificationURIComplete != "" {
		fmt.Fprintf(progress, "To sign in, open %s\n(or open %s and enter the code %s)\n", da.VerificationURIComplete, da.VerificationURI, da.UserCode)
	} else {
		fmt.Fprintf(progress, "To sign in, open %s and enter the code %s\n", da.VerificationURI, da.UserCode)
	}
	fmt.Fprintln(progress, "waiting for you to confirm…")
	tok, err := cfg.DeviceAccessToken(ctx, da)
	if err != nil {
		return fmt.Errorf("device-code sign-in: %w; run `nemoclave login --server %s` again", err, server)
	}
	l.Token, l.RefreshToken, l.Expiry = daemon.BearerOf(tok), tok.RefreshToken, tok.Expiry
	l.TokenURL, l.ClientID = ep.TokenURL, info.ClientId
	c, err := daemon.DialRemote(ctx, g.Home, l)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := l.Save(g.Home); err != nil {
		return err
	}
	fmt.Fprintf(out, "logged in to %s as %s (%s)\n", addr, c.Daemon.Caller, c.Daemon.Role)
	return nil
}
