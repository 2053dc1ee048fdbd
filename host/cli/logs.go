package cli

import (
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/nemoclave/nemoclave/host/daemon"
)

func newLogsCmd(g *Globals) *cobra.Command {
	var req daemon.LogsRequest
	var tail, lines int
	var raw bool
	cmd := &cobra.Command{
		Use:   "logs <sandbox>",
		Short: "Show a sandbox's logs: the agent, the gateway, plugins or the audit trail",
		Example: `  nemoclave logs quickstart --tail
  nemoclave logs quickstart --tail 200
  nemoclave logs quickstart --source audit -n 20
  nemoclave logs quickstart --source gateway --follow
  nemoclave logs quickstart --raw > agent-output.bin`,
		Long: `Show a sandbox's logs. Terminal control sequences the agent printed (clipboard,
title, screen clears, bidi overrides) are shown escaped, as \x1b... text, so
a log cannot drive your terminal; --raw prints the bytes as they are.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			name, n, err := logsTail(args, f.Changed("tail"), tail, f.Changed("lines"), lines)
			if err != nil {
				return err
			}
			req.Sandbox, req.Tail = name, n
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
	f.IntVar(&tail, "tail", 0, "only the last N lines: --tail (50), --tail N or --tail=N")
	f.Lookup("tail").NoOptDefVal = strconv.Itoa(defaultTail)
	f.IntVarP(&lines, "lines", "n", 0, "number of last lines to show (as --tail N)")
	f.BoolVar(&raw, "raw", false, "print terminal control sequences as they are (by default they are shown escaped, so the agent cannot drive your terminal)")
	return cmd
}

// defaultTail is the count of a bare --tail.
const defaultTail = 50

// logsTail works out the sandbox and the line count (0: the whole log)
// from logs' arguments. --tail takes an optional value (--tail, --tail=N),
// so pflag leaves the N of "--tail N" as a second argument; when --tail was
// given, a second argument that is a count is taken as its value. Sandbox
// names may be all digits, so two numeric arguments are ambiguous and
// refused with the spelling that is not.
func logsTail(args []string, tailSet bool, tail int, linesSet bool, lines int) (string, int, error) {
	name := args[0]
	if len(args) > 2 {
		return "", 0, fmt.Errorf("logs takes one sandbox (and, after --tail, a count), got %d arguments: %q", len(args), args)
	}
	if len(args) == 2 {
		if !tailSet {
			return "", 0, fmt.Errorf("logs takes one sandbox, got %q and %q (the count of last lines goes with --tail N or -n N)", args[0], args[1])
		}
		n0, err0 := strconv.Atoi(args[0])
		n1, err1 := strconv.Atoi(args[1])
		switch {
		case err0 == nil && err1 == nil:
			return "", 0, fmt.Errorf("logs %s %s --tail: which is the sandbox and which the count? write the count as --tail=N", args[0], args[1])
		case err1 == nil:
			tail = n1
		case err0 == nil:
			name, tail = args[1], n0
		default:
			return "", 0, fmt.Errorf("logs takes one sandbox, got %q and %q", args[0], args[1])
		}
		if tail != defaultTail && linesSet && lines != tail {
			return "", 0, fmt.Errorf("--tail %d and -n %d disagree: give the count once", tail, lines)
		}
	}
	if linesSet && tailSet && tail != defaultTail && lines != tail {
		return "", 0, fmt.Errorf("--tail=%d and -n %d disagree: give the count once", tail, lines)
	}
	n := 0
	switch {
	case linesSet:
		n = lines
	case tailSet:
		n = tail
	}
	if n < 0 || (tailSet && !linesSet && n == 0) {
		return "", 0, fmt.Errorf("the count of last lines must be at least 1, got %d (leave --tail out for the whole log)", n)
	}
	return name, n, nil
}

func readAll(r io.Reader) ([]byte, error) { return io.ReadAll(r) }
