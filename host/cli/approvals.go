package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func newApprovalsCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "approvals",
		Short: "Answer egress requests to hosts no rule names (unknown_hosts = \"ask\")",
	}
	cmd.AddCommand(approvalsList(g), approvalsAnswer(g, true), approvalsAnswer(g, false))
	return cmd
}

func approvalsList(g *Globals) *cobra.Command {
	var sandbox string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List pending approvals",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := connect(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer c.Close()
			list, err := c.ListApprovals(cmd.Context(), sandbox)
			if err != nil {
				return err
			}
			return Render(cmd.OutOrStdout(), g.Output, list, func(tw tabWriter) {
				if len(list) == 0 {
					fmt.Fprintln(tw, "no pending approvals")
					return
				}
				fmt.Fprintln(tw, "ID\tSANDBOX\tHOST\tWAITING\tEXPIRES IN")
				for _, a := range list {
					fmt.Fprintf(tw, "%s\t%s\t%s:%d\t%s\t%s\n", a.Id, a.Sandbox, a.Host, a.Port, time.Since(a.Requested.AsTime()).Round(time.Second), time.Until(a.Expires.AsTime()).Round(time.Second))
				}
			})
		},
	}
	cmd.Flags().StringVar(&sandbox, "sandbox", "", "only this sandbox")
	return cmd
}

func approvalsAnswer(g *Globals, allow bool) *cobra.Command {
	var scope string
	use, short := "deny <id>", "Refuse a pending request (the agent gets 403)"
	if allow {
		use, short = "approve <id>", "Allow a pending request: --scope once, sandbox (its lifetime) or persist (a new policy revision)"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := connect(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer c.Close()
			if _, err := c.AnswerApproval(cmd.Context(), args[0], allow, scope); err != nil {
				return err
			}
			verb := "denied"
			if allow {
				verb = "approved (" + strings.TrimSpace(scope) + ")"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", verb, args[0])
			return nil
		},
	}
	if allow {
		cmd.Flags().StringVar(&scope, "scope", "once", "once, sandbox or persist")
	}
	return cmd
}
