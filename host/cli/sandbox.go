package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/nemoclave/nemoclave/host/daemon"
	"github.com/nemoclave/nemoclave/host/runtime"
)

func init() {
	Register(func(g *Globals) *cobra.Command {
		cmd := &cobra.Command{
			Use:     "sandbox",
			Aliases: []string{"sandboxes", "sb"},
			Short:   "List, inspect, enter and delete sandboxes",
		}
		cmd.AddCommand(sandboxList(g), sandboxGet(g), sandboxConnect(g), sandboxExec(g), sandboxDelete(g))
		return cmd
	})
}

func sandboxList(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List sandboxes (also those left by an earlier daemon)",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := connect(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer c.Close()
			raw, err := c.Call(cmd.Context(), "ListSandboxes", "")
			if err != nil {
				return err
			}
			var list []runtime.SandboxView
			if err := json.Unmarshal(raw, &list); err != nil {
				return err
			}
			return Render(cmd.OutOrStdout(), g.Output, list, func(tw tabWriter) {
				fmt.Fprintln(tw, "NAME\tAGENT\tDRIVER\tSTATE\tPOLICY\tCREATED")
				for _, s := range list {
					st := s.State
					if s.ExitCode != nil {
						st = fmt.Sprintf("%s (%d)", st, *s.ExitCode)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s@%d\t%s\n", s.Name, s.Agent, s.Driver, st, s.Policy, s.Revision, s.CreatedAt.Local().Format("2006-01-02 15:04:05"))
				}
			})
		},
	}
}

func sandboxGet(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "get <sandbox>",
		Short: "Show one sandbox",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := connect(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer c.Close()
			raw, err := c.Call(cmd.Context(), "GetSandbox", args[0])
			if err != nil {
				return err
			}
			var s runtime.SandboxView
			if err := json.Unmarshal(raw, &s); err != nil {
				return err
			}
			return Render(cmd.OutOrStdout(), g.Output, s, func(tw tabWriter) {
				fmt.Fprintf(tw, "name:\t%s\nagent:\t%s\ndriver:\t%s\nstate:\t%s\n", s.Name, s.Agent, s.Driver, s.State)
				if s.ExitCode != nil {
					fmt.Fprintf(tw, "exit code:\t%d\n", *s.ExitCode)
				}
				if s.Reason != "" {
					fmt.Fprintf(tw, "reason:\t%s\n", s.Reason)
				}
				fmt.Fprintf(tw, "blueprint:\t%s\npolicy:\t%s (revision %d)\ncreated:\t%s\n", s.Blueprint, s.Policy, s.Revision, s.CreatedAt.Local().Format("2006-01-02 15:04:05"))
				for k, v := range s.Ports {
					fmt.Fprintf(tw, "listener %s:\t127.0.0.1:%d (inside the sandbox)\n", k, v)
				}
			})
		},
	}
}

// runExec runs a command in a sandbox through the daemon, on a terminal
// when stdin is one, and exits with its code.
func runExec(cmd *cobra.Command, g *Globals, sandbox string, command []string, tty bool) error {
	c, err := connect(cmd.Context(), g)
	if err != nil {
		return err
	}
	defer c.Close()
	req := daemon.ExecRequest{Sandbox: sandbox, Command: command, TTY: tty}
	eio := daemon.ExecIO{Stdin: cmd.InOrStdin(), Stdout: cmd.OutOrStdout(), Stderr: cmd.ErrOrStderr()}
	if tty {
		fd := int(os.Stdin.Fd())
		if cols, rows, err := term.GetSize(fd); err == nil {
			req.Rows, req.Cols = uint16(rows), uint16(cols)
		}
		old, err := term.MakeRaw(fd)
		if err != nil {
			return fmt.Errorf("cannot put the terminal in raw mode: %w (use `sandbox exec` without -t)", err)
		}
		defer term.Restore(fd, old)
	}
	code, err := c.Exec(cmd.Context(), req, eio)
	if err != nil {
		return err
	}
	if code != 0 {
		return &ExitError{Code: code}
	}
	return nil
}

func sandboxConnect(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "connect <sandbox> [command...]",
		Short: "Open a shell (or run a command) on a terminal inside a sandbox",
		Long: `Open an interactive terminal inside a running sandbox, under the same
restrictions as its agent. 'nemoclave <sandbox> connect' works too.`,
		Example: `  nemoclave sandbox connect quickstart
  nemoclave quickstart connect
  nemoclave sandbox connect quickstart nemoclave agent`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runExec(cmd, g, args[0], args[1:], term.IsTerminal(int(os.Stdin.Fd())))
		},
	}
}

func sandboxExec(g *Globals) *cobra.Command {
	var tty bool
	cmd := &cobra.Command{
		Use:   "exec <sandbox> -- <command...>",
		Short: "Run a command inside a sandbox",
		Example: `  nemoclave sandbox exec quickstart -- ls /workspace
  echo hi | nemoclave sandbox exec quickstart -- cat`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runExec(cmd, g, args[0], args[1:], tty)
		},
	}
	cmd.Flags().BoolVarP(&tty, "tty", "t", false, "allocate a terminal")
	return cmd
}

func sandboxDelete(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:     "delete <sandbox>...",
		Aliases: []string{"rm"},
		Short:   "Stop a sandbox, kill everything it runs, and forget it",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := connect(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer c.Close()
			var failed []string
			for _, name := range args {
				if _, err := c.Call(cmd.Context(), "DeleteSandbox", name); err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "%s: %v\n", name, err)
					failed = append(failed, name)
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "deleted %s\n", name)
			}
			if len(failed) > 0 {
				return fmt.Errorf("could not delete %s", strings.Join(failed, ", "))
			}
			return nil
		},
	}
}
