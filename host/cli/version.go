package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/nemoclave/nemoclave/host/daemon"
	"github.com/nemoclave/nemoclave/version"
)

func newVersionCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the CLI's and the daemon's version and build id",
		Long: `Print this binary's version and Go build id, and those of the daemon serving
$NEMOCLAVE_HOME when one runs. The CLI restarts an idle daemon of another
build by itself; a busy one is reported with the command that restarts it.`,
		Example: `  nemoclave version
  nemoclave --version`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return printVersion(cmd.Context(), cmd.OutOrStdout(), g)
		},
	}
}

// versionInfo is what `nemoclave version -o json` prints.
type versionInfo struct {
	CLI    buildInfo  `json:"cli"`
	Daemon *buildInfo `json:"daemon,omitempty"`
	// Warning says the two differ, and what to do.
	Warning string `json:"warning,omitempty"`
}

type buildInfo struct {
	Version string `json:"version"`
	BuildID string `json:"build_id"`
	Pid     int32  `json:"pid,omitempty"`
}

func printVersion(ctx context.Context, w io.Writer, g *Globals) error {
	v := versionInfo{CLI: buildInfo{Version: version.Version, BuildID: daemon.BuildID()}}
	// No autostart: asking for versions must not start (or restart) a
	// daemon.
	c, err := daemon.Connect(ctx, g.Home, false)
	switch {
	case err == nil:
		defer c.Close()
		v.Daemon = &buildInfo{Version: c.Daemon.Version, BuildID: c.Daemon.BuildId, Pid: c.Daemon.Pid}
		v.Warning = c.Warning
	case !errors.Is(err, daemon.ErrNotRunning):
		return err
	}
	return Render(w, g.Output, v, func(tw tabWriter) {
		fmt.Fprintf(tw, "cli\t%s\n", daemon.VersionString(v.CLI.Version, v.CLI.BuildID))
		if v.Daemon == nil {
			fmt.Fprintf(tw, "daemon\tnot running (started on demand)\n")
		} else {
			fmt.Fprintf(tw, "daemon\t%s\tpid %d\n", daemon.VersionString(v.Daemon.Version, v.Daemon.BuildID), v.Daemon.Pid)
		}
		if v.Warning != "" {
			fmt.Fprintf(tw, "\n%s\n", v.Warning)
		}
	})
}
