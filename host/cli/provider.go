package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/nemoclave/nemoclave/host/credentials"
)

func newProviderCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "provider",
		Short: "Manage the provider credentials blueprints reference with credential(\"NAME\")",
		Long: "Credentials live in $NEMOCLAVE_HOME/credentials.json (mode 0600, read only by the daemon), with the\n" +
			"daemon's environment as a fallback. Only the gateway's provider plugins ever see a value: never the\n" +
			"sandbox, never a blueprint, never a log line. These commands never print a value.",
	}
	cmd.AddCommand(newProviderListCmd(g), newProviderAddCmd(g), newProviderRemoveCmd(g))
	return cmd
}

func newProviderListCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List stored credential names (never their values)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			infos, err := credentials.Default(g.Home).List(cmd.Context())
			if err != nil {
				return err
			}
			if infos == nil {
				infos = []credentials.Info{}
			}
			return Render(cmd.OutOrStdout(), g.Output, infos, func(tw *tabwriter.Writer) {
				if len(infos) == 0 {
					fmt.Fprintln(tw, "no credentials stored; add one with: nemoclave provider add NVIDIA_API_KEY")
					return
				}
				fmt.Fprintln(tw, "NAME\tSOURCE\tADDED")
				for _, i := range infos {
					added := "-"
					if !i.CreatedAt.IsZero() {
						added = i.CreatedAt.Format("2006-01-02 15:04 MST")
					}
					src := i.Backend
					if src == "env" {
						src = "environment"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\n", i.Name, src, added)
				}
			})
		},
	}
}

func newProviderAddCmd(g *Globals) *cobra.Command {
	var fromEnv string
	cmd := &cobra.Command{
		Use:   "add NAME",
		Short: "Store a credential, reading its value from stdin or --from-env (never from arguments)",
		Long: "Stores NAME in $NEMOCLAVE_HOME/credentials.json. The value is read from standard input (typed without\n" +
			"echo on a terminal, or piped: `pass show nvidia | nemoclave provider add NVIDIA_API_KEY`) or copied\n" +
			"from an environment variable with --from-env. It is never taken from the command line, where it\n" +
			"would land in shell history and the process list.",
		Example: "  nemoclave provider add NVIDIA_API_KEY\n  nemoclave provider add OPENAI_API_KEY --from-env OPENAI_API_KEY",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := credentials.ValidName(name); err != nil {
				return err
			}
			var value string
			if fromEnv != "" {
				v, ok := os.LookupEnv(fromEnv)
				if !ok || v == "" {
					return fmt.Errorf("--from-env %s: the variable is not set or empty", fromEnv)
				}
				value = v
			} else {
				v, err := readSecret(cmd.InOrStdin(), cmd.ErrOrStderr(), name)
				if err != nil {
					return err
				}
				value = v
			}
			value = strings.TrimSpace(value)
			if value == "" {
				return fmt.Errorf("no value given for %s: pipe it on stdin or use --from-env VAR", name)
			}
			f := credentials.NewFile(g.Home)
			if err := f.Set(cmd.Context(), name, credentials.NewSecret(value)); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "stored %s in %s (mode 0600); reference it in a blueprint as credential(%q)\n", name, f.Path, name)
			return nil
		},
	}
	cmd.Flags().StringVar(&fromEnv, "from-env", "", "copy the value from this environment variable instead of stdin")
	return cmd
}

// readSecret reads one line from in; on a terminal it prompts on errw and
// turns echo off while reading.
func readSecret(in io.Reader, errw io.Writer, name string) (string, error) {
	if f, ok := in.(*os.File); ok {
		if old, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err == nil {
			fmt.Fprintf(errw, "value for %s (input hidden): ", name)
			noEcho := *old
			noEcho.Lflag &^= unix.ECHO
			if err := unix.IoctlSetTermios(int(f.Fd()), unix.TCSETS, &noEcho); err == nil {
				defer func() {
					_ = unix.IoctlSetTermios(int(f.Fd()), unix.TCSETS, old)
					fmt.Fprintln(errw)
				}()
			}
		}
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the value of %s from stdin: %w", name, err)
	}
	return line, nil
}

func newProviderRemoveCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "remove NAME",
		Short: "Delete a stored credential",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f := credentials.NewFile(g.Home)
			if err := f.Delete(context.WithoutCancel(cmd.Context()), args[0]); err != nil {
				if errors.Is(err, credentials.ErrNotFound) {
					if _, envErr := (credentials.Env{}).Get(cmd.Context(), args[0]); envErr == nil {
						return fmt.Errorf("%s is not in %s; it comes from the environment: unset $%s where the daemon starts", args[0], f.Path, args[0])
					}
				}
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %s from %s; running sandboxes keep the value their plugins were configured with until they restart\n", args[0], f.Path)
			return nil
		},
	}
}
