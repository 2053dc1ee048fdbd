package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"
)

// Globals are the flags every command sees.
type Globals struct {
	// Output is table, json or yaml for read commands.
	Output string
	// Home is $NEMOCLAVE_HOME (default ~/.nemoclave).
	Home string
}

// ExitError carries a specific exit code (validate exits 1 on diagnostics)
// without printing an extra message: the command already printed it.
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// NewRoot builds the command tree. name is "nemoclave" or "openshell".
func NewRoot(name string) *cobra.Command {
	g := &Globals{}
	root := &cobra.Command{
		Use:           name,
		Short:         "Run AI agents in sandboxes behind an authenticated gateway",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVarP(&g.Output, "output", "o", "table", "output format for read commands: table, json or yaml")
	root.PersistentFlags().StringVar(&g.Home, "home", DefaultHome(), "state directory ($NEMOCLAVE_HOME)")
	showVersion := root.Flags().Bool("version", false, "print the CLI's and the daemon's version and build id")
	root.Args = cobra.NoArgs
	root.RunE = func(cmd *cobra.Command, _ []string) error {
		if *showVersion {
			return printVersion(cmd.Context(), cmd.OutOrStdout(), g)
		}
		return cmd.Help()
	}
	root.AddCommand(
		newAgentCmd(g), newAgentConfigCmd(g), newApprovalsCmd(g), newDaemonCmd(g), newFmtCmd(g),
		newInferenceCmd(g), newInitCmd(g), newLoginCmd(g), newLogoutCmd(g), newLogsCmd(g),
		newOnboardCmd(g), newPlanCmd(g), newPluginCmd(g), newPolicyCmd(g), newProviderCmd(g),
		newRunCmd(g), newSandboxCmd(g), newSetupCmd(g), newTermCmd(g), newValidateCmd(g), newVersionCmd(g),
	)
	// The kubernetes build adds the in-pod supervisor (daemon_kubernetes.go).
	root.AddCommand(kubernetesCommands(g)...)
	addCompletions(root, g)
	return root
}

// DefaultHome is $NEMOCLAVE_HOME, else ~/.nemoclave.
func DefaultHome() string {
	if h := os.Getenv("NEMOCLAVE_HOME"); h != "" {
		return h
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".nemoclave")
	}
	return ".nemoclave"
}

// Main runs the CLI and returns the process exit code.
func Main(args []string) int {
	name := filepath.Base(args[0])
	if name != "openshell" {
		name = "nemoclave"
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := NewRoot(name)
	root.SetArgs(rewriteSandboxFirst(root, args[1:]))
	if err := root.ExecuteContext(ctx); err != nil {
		var ee *ExitError
		if errors.As(err, &ee) {
			return ee.Code
		}
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 1
	}
	return 0
}

// rewriteSandboxFirst turns `nemoclave <sandbox> connect [cmd...]` into
// `nemoclave sandbox connect <sandbox> [cmd...]`, the form users of other
// sandbox CLIs type.
func rewriteSandboxFirst(root *cobra.Command, args []string) []string {
	if len(args) > 0 && (args[0] == cobra.ShellCompRequestCmd || args[0] == cobra.ShellCompNoDescRequestCmd) {
		// A <TAB>: the last word is the one being completed, so the form
		// is rewritten only once `connect` is a whole word before it
		// (`nemoclave <sandbox> <TAB>` is the root's to complete).
		if len(args) < 4 {
			return args
		}
		return append([]string{args[0]}, rewriteSandboxFirst(root, args[1:])...)
	}
	if len(args) < 2 || args[1] != "connect" {
		return args
	}
	if c, _, err := root.Find(args[:1]); err == nil && c != root {
		return args // a real command
	}
	return append([]string{"sandbox", "connect", args[0]}, args[2:]...)
}
