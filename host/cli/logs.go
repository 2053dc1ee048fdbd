package cli

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/nemoclave/nemoclave/host/daemon"
)

func newLogsCmd(g *Globals) *cobra.Command {
	var req daemon.LogsRequest
	var tail bool
	var lines int
	var raw bool
	cmd := &cobra.Command{
		Use:   "logs <sandbox>",
		Short: "Show a sandbox's logs: the agent, the gateway, plugins or the audit trail",
		Example: `  nemoclave logs quickstart --tail
  nemoclave logs quickstart --source audit -n 20
  nemoclave logs quickstart --source gateway --follow
  nemoclave logs quickstart --raw > agent-output.bin`,
		Long: `Show a sandbox's logs. Terminal control sequences the agent printed (clipboard,
title, screen clears, bidi overrides) are shown escaped, as \x1b... text, so
a log cannot drive your terminal; --raw prints the bytes as they are.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Sandbox = args[0]
			if tail && lines == 0 {
				lines = 50
			}
			req.Tail = lines
			c, err := connect(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer c.Close()
			if raw {
				return c.Logs(cmd.Context(), req, cmd.OutOrStdout())
			}
			w := newEscapeWriter(cmd.OutOrStdout())
			err = c.Logs(cmd.Context(), req, w)
			if ferr := w.Flush(); err == nil {
				err = ferr
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Source, "source", "sandbox", "sandbox (the agent's output), gateway, plugin or audit")
	f.BoolVarP(&req.Follow, "follow", "f", false, "keep printing new lines")
	f.BoolVar(&tail, "tail", false, "only the last lines (50 unless -n says otherwise)")
	f.IntVarP(&lines, "lines", "n", 0, "number of last lines to show")
	f.BoolVar(&raw, "raw", false, "print terminal control sequences as they are (by default they are shown escaped, so the agent cannot drive your terminal)")
	return cmd
}

func readAll(r io.Reader) ([]byte, error) { return io.ReadAll(r) }
