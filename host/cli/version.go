package cli

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/nemoclave/nemoclave/version"
)

// `nemoclave version` needs no daemon, home or cluster: the image test and
// operators run it to see which build a container holds.
func init() {
	Register(func(g *Globals) *cobra.Command {
		return &cobra.Command{
			Use:   "version",
			Short: "Print the nemoclave version and the Go toolchain it was built with",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return Render(cmd.OutOrStdout(), g.Output, map[string]any{"version": version.Version, "go": runtime.Version()}, func(tw tabWriter) {
					fmt.Fprintf(tw, "nemoclave %s (%s)\n", version.Version, runtime.Version())
				})
			},
		}
	})
}
