package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nemoclave/nemoclave/host/daemon"
	"github.com/nemoclave/nemoclave/policy"
)

func newPolicyCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Show and change a sandbox's policy"}
	cmd.AddCommand(policyGet(g), policySet(g), policyAddPreset(g))
	return cmd
}

func policyGet(g *Globals) *cobra.Command {
	var full, base bool
	cmd := &cobra.Command{
		Use:   "get <sandbox>",
		Short: "Show the effective policy (--full: with revisions and approvals; --base: as the blueprint declared it)",
		Example: `  nemoclave policy get quickstart
  nemoclave policy get quickstart --full -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if full && base {
				return fmt.Errorf("--full and --base are exclusive")
			}
			view := "effective"
			if full {
				view = "full"
			} else if base {
				view = "base"
			}
			c, err := connect(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer c.Close()
			resp, err := c.GetPolicy(cmd.Context(), args[0], view)
			if err != nil {
				return err
			}
			p, err := daemon.PolicyFromStruct(resp.Policy)
			if err != nil {
				return err
			}
			if p == nil {
				return fmt.Errorf("the daemon sent no policy for %s", args[0])
			}
			if view != "full" {
				// The policy document itself, as `policy set --file` reads it.
				return Render(cmd.OutOrStdout(), g.Output, p, func(tw tabWriter) { printPolicy(tw, p) })
			}
			return Render(cmd.OutOrStdout(), g.Output, resp, func(tw tabWriter) {
				printPolicy(tw, p)
				fmt.Fprintln(tw, "\nREVISION\tSOURCE\tAT\tHOSTS")
				for _, r := range resp.Revisions {
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", r.Revision, r.Source, r.At.AsTime().UTC().Format("2006-01-02T15:04:05Z"), strings.Join(r.Hosts, " "))
				}
				if len(resp.Grants) > 0 {
					fmt.Fprintf(tw, "\nallowed for this sandbox's lifetime:\t%s\n", strings.Join(resp.Grants, " "))
				}
				if len(resp.Approvals) > 0 {
					fmt.Fprintln(tw, "\nAPPROVAL\tHOST\tDECISION\tSCOPE\tAT")
					for _, a := range resp.Approvals {
						fmt.Fprintf(tw, "%d\t%s:%d\t%s\t%s\t%s\n", a.Id, a.Host, a.Port, a.Decision, a.Scope, a.DecidedAt.AsTime().UTC().Format("2006-01-02T15:04:05Z"))
					}
				}
			})
		},
	}
	cmd.Flags().BoolVar(&full, "full", false, "include presets' sources, revisions and approvals")
	cmd.Flags().BoolVar(&base, "base", false, "the policy as the blueprint declared it, before approvals and changes")
	return cmd
}

func printPolicy(tw tabWriter, p *policy.Policy) {
	fmt.Fprintf(tw, "policy:\t%s (revision %d)\n", p.Name, p.Revision)
	if len(p.Presets) > 0 {
		fmt.Fprintf(tw, "presets:\t%s\n", strings.Join(p.Presets, ", "))
	}
	fmt.Fprintf(tw, "unknown hosts:\t%s\n", p.UnknownHosts)
	fmt.Fprintf(tw, "read only:\t%s\n", strings.Join(p.Filesystem.ReadOnly, " "))
	fmt.Fprintf(tw, "read write:\t%s\n", strings.Join(p.Filesystem.ReadWrite, " "))
	if len(p.Filesystem.Protected) > 0 {
		fmt.Fprintf(tw, "protected:\t%s\n", strings.Join(p.Filesystem.Protected, " "))
	}
	fmt.Fprintf(tw, "landlock:\tminimum ABI %d, best effort %v\n", p.Landlock.MinABI, p.Landlock.BestEffort)
	if len(p.Network) == 0 {
		fmt.Fprintln(tw, "network:\tnone (no egress at all)")
		return
	}
	fmt.Fprintln(tw, "\nRULE\tSOURCE\tHOST\tPORTS\tINSPECT")
	for _, r := range p.Network {
		for _, e := range r.Endpoints {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%v\n", r.Name, r.Source, e.Host, e.EffectivePorts(), e.Inspect)
		}
	}
}

func policySet(g *Globals) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "set <sandbox> --file policy.json",
		Short: "Replace a running sandbox's network policy (new connections use it at once)",
		Long: `Replace the network rules and unknown_hosts of a running sandbox. Start from
'nemoclave policy get <sandbox> -o json', edit, and set it back. Filesystem,
Landlock and process settings are fixed when a sandbox starts and cannot be
changed here.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return fmt.Errorf("--file is required (a policy as printed by `nemoclave policy get %s -o json`; - reads stdin)", args[0])
			}
			var b []byte
			var err error
			if file == "-" {
				b, err = readAll(cmd.InOrStdin())
			} else {
				b, err = os.ReadFile(file)
			}
			if err != nil {
				return err
			}
			return setPolicy(cmd, g, args[0], b, nil)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "policy JSON file, or - for stdin")
	return cmd
}

func policyAddPreset(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:     "add-preset <sandbox> <preset>...",
		Short:   "Add policy presets to a running sandbox",
		Example: `  nemoclave policy add-preset quickstart github npm`,
		Args:    cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return setPolicy(cmd, g, args[0], nil, args[1:])
		},
	}
}

func setPolicy(cmd *cobra.Command, g *Globals, sandbox string, policyJSON []byte, presets []string) error {
	c, err := connect(cmd.Context(), g)
	if err != nil {
		return err
	}
	defer c.Close()
	res, err := c.SetPolicy(cmd.Context(), sandbox, policyJSON, presets)
	if err != nil {
		return err
	}
	return Render(cmd.OutOrStdout(), g.Output, res, func(tw tabWriter) {
		fmt.Fprintf(tw, "sandbox %s now runs policy revision %d\n%s\n", sandbox, res.Revision, res.Note)
	})
}
