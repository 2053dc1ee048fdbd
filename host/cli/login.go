package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/nemoclave/nemoclave/host/daemon"
)

func newLoginCmd(g *Globals) *cobra.Command {
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
certificate from a private CA is verified with --ca-file, a PEM bundle of
that CA, which is also trusted (with the system roots) for the OIDC issuer.
The file's path is kept in login.json; NEMOCLAVE_CA_FILE overrides it.`,
		Example: `  nemoclave login --server https://nemoclave.example.com:7443
  nemoclave login --server https://10.0.0.5:7443 --fingerprint sha256:3f1c…
  nemoclave login --server https://nemoclave.corp.example:7443 --ca-file /etc/pki/corp-ca.pem
  NEMOCLAVE_TOKEN=$(my-issuer-cli token) nemoclave login --server https://nemoclave.example.com:7443`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			server, _ := cmd.Flags().GetString("server")
			return login(cmd.Context(), g, cmd.OutOrStdout(), cmd.ErrOrStderr(), server, fingerprint, caFile)
		},
	}
	cmd.Flags().String("server", "", "the remote daemon: https://host:port (its --listen address)")
	cmd.Flags().StringVar(&fingerprint, "fingerprint", "", "pin the daemon's self-signed certificate: sha256:<hex>, as the daemon printed it")
	cmd.Flags().StringVar(&caFile, "ca-file", "", "PEM bundle of a private CA: it signs the daemon's certificate and/or the OIDC issuer's (kept in login.json)")
	_ = cmd.MarkFlagRequired("server")
	return cmd
}

func newLogoutCmd(g *Globals) *cobra.Command {
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
}

func login(ctx context.Context, g *Globals, out, progress io.Writer, server, fingerprint, caFile string) error {
	addr, err := daemon.NormalizeServer(server)
	if err != nil {
		return err
	}
	if caFile != "" {
		// Kept in login.json: absolute, so that commands run from any
		// directory find it.
		if caFile, err = filepath.Abs(caFile); err != nil {
			return fmt.Errorf("--ca-file: %w", err)
		}
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
	if err := daemon.DeviceSignIn(ctx, l, info, progress); err != nil {
		return err
	}
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
