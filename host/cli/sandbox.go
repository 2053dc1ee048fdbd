package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/nemoclave/nemoclave/host/daemon"
)

func newSandboxCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "sandbox",
		Aliases: []string{"sandboxes", "sb"},
		Short:   "List, inspect, enter and delete sandboxes",
	}
	cmd.AddCommand(sandboxList(g), sandboxGet(g), sandboxConnect(g), sandboxExec(g), sandboxDelete(g))
	return cmd
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
			list, err := c.ListSandboxes(cmd.Context())
			if err != nil {
				return err
			}
			return Render(cmd.OutOrStdout(), g.Output, list, func(tw tabWriter) {
				fmt.Fprintln(tw, "NAME\tAGENT\tDRIVER\tSTATE\tPOLICY\tCREATED")
				for _, s := range list {
					st := s.State
					if s.ExitCode != nil {
						st = fmt.Sprintf("%s (%d)", st, *s.ExitCode)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s@%d\t%s\n", s.Name, s.Agent, s.Driver, st, s.Policy, s.PolicyRevision, s.CreatedAt.AsTime().Local().Format("2006-01-02 15:04:05"))
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
			s, err := c.GetSandbox(cmd.Context(), args[0])
			if err != nil {
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
				fmt.Fprintf(tw, "blueprint:\t%s\npolicy:\t%s (revision %d)\ncreated:\t%s\n", s.Blueprint, s.Policy, s.PolicyRevision, s.CreatedAt.AsTime().Local().Format("2006-01-02 15:04:05"))
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
		resize := make(chan [2]uint16, 1)
		ctx, cancel := context.WithCancel(cmd.Context())
		defer cancel()
		followWindow(ctx, func(rows, cols uint16) error {
			// Only the latest size matters: replace one still pending.
			select {
			case <-resize:
			default:
			}
			resize <- [2]uint16{rows, cols}
			return nil
		})
		eio.Resize = resize
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
	var shell bool
	cmd := &cobra.Command{
		Use:   "connect <sandbox> [--shell | -- command...]",
		Short: "Type into a sandbox's agent, or open a shell inside the sandbox",
		Long: `Connect your terminal to the agent of a running sandbox (a chat started with
'nemoclave run -d' waits for you there): you see its last lines and what it
writes next, and what you type is its input. Ctrl-P Ctrl-Q detaches and
leaves it running; when the agent exits, connect exits with its code.

--shell opens a shell on a terminal inside the sandbox instead, and a
command after -- runs that command there; both under the same restrictions
as the agent. 'nemoclave <sandbox> connect' works too.`,
		Example: `  nemoclave sandbox connect quickstart
  nemoclave quickstart connect
  nemoclave quickstart connect --shell
  nemoclave sandbox connect quickstart -- nemoclave agent`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			tty := term.IsTerminal(int(os.Stdin.Fd()))
			switch {
			case shell && len(args) > 1:
				return fmt.Errorf("give either --shell or a command after --, not both")
			case shell:
				return runExec(cmd, g, args[0], []string{"/bin/sh"}, tty)
			case len(args) > 1:
				return runExec(cmd, g, args[0], args[1:], tty)
			}
			return connectAgent(cmd, g, args[0])
		},
	}
	cmd.Flags().BoolVar(&shell, "shell", false, "open a shell inside the sandbox instead of connecting to its agent")
	return cmd
}

// connectAgent attaches the terminal (or a pipe) to the agent's console.
func connectAgent(cmd *cobra.Command, g *Globals, name string) error {
	c, err := connect(cmd.Context(), g)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(cmd.Context())
	defer cancel()
	mode := stdinMode()
	tty := mode == "tty"
	req := daemon.AttachRequest{Sandbox: name, Output: true, Tail: 20}
	ev := &connectEvents{out: newEscapeWriter(cmd.OutOrStdout()), cancel: cancel}
	progress := cmd.ErrOrStderr()
	if tty {
		req.Rows, req.Cols = terminalSize()
		restore, err := rawTerminal()
		if err != nil {
			return err
		}
		defer restore()
		tw := newTerminalWriter(cmd.OutOrStdout())
		ev.out, progress = tw, crlfWriter{progress}
	}
	defer func() { ev.mu.Lock(); _ = ev.out.Flush(); ev.mu.Unlock() }()
	if tty {
		// Before the agent's last lines arrive, so it never splits them.
		fmt.Fprintf(progress, "connecting to the agent in %s (%s detaches)\n", name, detachKeyDoc)
	}
	s, done, err := c.Attach(ctx, req, ev)
	if err != nil {
		return err
	}
	defer s.Close()
	if tty {
		followWindow(ctx, s.Resize)
	}
	if mode != "" {
		input := readInput(os.Stdin, tty, func() bool { return true }, cancel)
		go pumpInput(input, s, tty, func() { _ = s.Detach() })
	}
	select {
	case err = <-done:
	case <-ctx.Done():
	}
	ev.mu.Lock()
	defer ev.mu.Unlock()
	switch {
	case ev.detached:
		fmt.Fprintf(progress, "detached from %s; it keeps running\n", name)
		return nil
	case ev.exited:
		fmt.Fprintf(progress, "the agent in %s exited with code %d\n", name, ev.code)
		if ev.code != 0 {
			return &ExitError{Code: max(ev.code, 1)}
		}
		return nil
	case err != nil:
		return err
	case cmd.Context().Err() != nil:
		return &ExitError{Code: 130}
	}
	return nil
}

type connectEvents struct {
	mu  sync.Mutex
	out interface {
		io.Writer
		Flush() error
	}
	cancel   context.CancelFunc
	detached bool
	exited   bool
	code     int
}

func (e *connectEvents) Ready(bool) {}
func (e *connectEvents) Output(b []byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, _ = e.out.Write(b)
}
func (e *connectEvents) Detached() { e.mu.Lock(); e.detached = true; e.mu.Unlock(); e.cancel() }
func (e *connectEvents) Exit(code int, _ string) {
	e.mu.Lock()
	e.exited, e.code = true, code
	e.mu.Unlock()
	e.cancel()
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
				if _, err := c.DeleteSandbox(cmd.Context(), name); err != nil {
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
