package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func init() {
	Register(func(g *Globals) *cobra.Command {
		var f blueprintFlags
		cmd := &cobra.Command{
			Use:   "validate <file|dir>",
			Short: "Check a blueprint: syntax, references, types, plugin configs and policies",
			Long: `Validate evaluates a blueprint (a .hcl or .hcl.json file, or a directory of
them) without running anything, and prints every problem with its file, line,
column and a source snippet. It exits 0 when the blueprint is valid and 1
otherwise. Plugin config blocks are checked against the schemas the plugins
declare.`,
			Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				if _, err := f.load(cmd.Context(), g, cmd.ErrOrStderr(), args[0]); err != nil {
					return err
				}
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "%s: the blueprint is valid.\n", args[0])
				return err
			},
		}
		f.register(cmd)
		allowSingleDash(cmd, "var", "var-file", "preset-dir", "home", "output")
		return cmd
	})
}
