package cli

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	pb "github.com/nemoclave/nemoclave/host/api/daemonpb"
	"github.com/nemoclave/nemoclave/host/config"
	"github.com/nemoclave/nemoclave/host/daemon"
)

func newInferenceCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "inference",
		Short: "Show and change how sandboxes reach models",
		Long: "Every sandbox reaches models only through the gateway's inference router, which holds the\n" +
			"credentials, routes model aliases to provider plugins, falls back, and meters usage.",
	}
	cmd.AddCommand(newInferenceStatusCmd(g), newInferenceSetCmd(g))
	return cmd
}

func newInferenceStatusCmd(g *Globals) *cobra.Command {
	var sandbox string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the default model, live routes and provider health, and token usage",
		Long: "Asks the daemon (started if it is not running) for config.yaml's default, each running sandbox's\n" +
			"routes, provider health and budget use, and the usage the gateway recorded today and this month.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := connect(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer c.Close()
			st, err := c.InferenceStatus(cmd.Context(), sandbox)
			if err != nil {
				return fmt.Errorf("ask the daemon for inference status: %w", err)
			}
			return Render(cmd.OutOrStdout(), g.Output, st, func(tw *tabwriter.Writer) { renderInference(tw, st) })
		},
	}
	cmd.Flags().StringVar(&sandbox, "sandbox", "", "only this running sandbox")
	return cmd
}

func renderInference(tw *tabwriter.Writer, st *pb.InferenceStatusResponse) {
	if d := st.Default; d == nil || d.Provider == "" && d.Model == "" {
		fmt.Fprintln(tw, "default:\tnone set (nemoclave inference set --provider P --model M)")
	} else {
		fmt.Fprintf(tw, "default:\t%s %s\n", d.Provider, d.Model)
	}
	for _, v := range st.Live {
		fmt.Fprintf(tw, "\nsandbox %s (default alias %s)\n", v.Sandbox, v.Default)
		fmt.Fprintln(tw, "ALIAS\tPROVIDER\tMODEL\tFALLBACK")
		for _, r := range v.Routes {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%v\n", r.Alias, r.Provider, r.Model, r.Fallback)
		}
		for _, p := range v.Providers {
			fmt.Fprintf(tw, "provider %s:\t%s\t%d consecutive failures\t%s\n", p.Provider, p.State, p.ConsecutiveFailures, p.LastError)
		}
		b := v.GetUsage()
		fmt.Fprintf(tw, "budget:\t%d tokens today (limit %s), %d this month (limit %s), $%.4f today\n",
			b.GetTokensToday(), limitString(b.GetBudget().GetTokensPerDay()), b.GetTokensMonth(), limitString(b.GetBudget().GetTokensPerMonth()), b.GetCostTodayUsd())
	}
	fmt.Fprintln(tw)
	if len(st.UsageMonth) > 0 {
		fmt.Fprintln(tw, "USAGE THIS MONTH\tSANDBOX\tALIAS\tPROVIDER\tMODEL\tREQUESTS\tINPUT\tOUTPUT\tCOST USD")
		for _, u := range st.UsageMonth {
			fmt.Fprintf(tw, "\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%.4f\n", u.Sandbox, u.Alias, u.Provider, u.Model, u.Requests, u.InputTokens, u.OutputTokens, u.CostUsd)
		}
	} else {
		fmt.Fprintf(tw, "usage:\tnone recorded this month (%s)\n", st.UsageFile)
	}
	for _, n := range st.Notes {
		fmt.Fprintf(tw, "note:\t%s\n", n)
	}
}

func limitString(n int64) string {
	if n == 0 {
		return "none"
	}
	return fmt.Sprint(n)
}

func newInferenceSetCmd(g *Globals) *cobra.Command {
	var provider, model, sandbox string
	cmd := &cobra.Command{
		Use:   "set --provider P --model M [--sandbox S]",
		Short: "Change the default model, for new runs and for running sandboxes, without a restart",
		Long: "Without --sandbox: writes inference.provider and inference.model to $NEMOCLAVE_HOME/config.yaml (the\n" +
			"default new runs start with) and, when the daemon is running, points the default alias of every running\n" +
			"sandbox at the provider and model at once. With --sandbox: changes only that running sandbox\n" +
			"(config.yaml holds no per-sandbox defaults). The provider is the name of an llm plugin loaded for the\n" +
			"sandbox (`main` or `plugin.llm.main`, as in `inference status`); the model must be one the provider lists.\n" +
			"Running sandboxes are changed first, so a provider or model they reject is not written to config.yaml.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if provider == "" || model == "" {
				return errors.New("both --provider and --model are required (the provider as the blueprint names it: main for plugin.llm.main)")
			}
			return inferenceSet(cmd, g, provider, model, sandbox)
		},
	}
	cmd.Flags().StringVar(&provider, "provider", "", "llm provider plugin name")
	cmd.Flags().StringVar(&model, "model", "", "provider model name")
	cmd.Flags().StringVar(&sandbox, "sandbox", "", "change only this running sandbox")
	return cmd
}

// inferenceSet changes running sandboxes through the daemon (which checks
// the provider and model against what the provider lists) and then, without
// --sandbox, config.yaml: the default every new run applies to the
// blueprint's default alias when it loads that provider.
func inferenceSet(cmd *cobra.Command, g *Globals, provider, model, sandbox string) error {
	ctx, out := cmd.Context(), cmd.OutOrStdout()
	c, err := daemon.Connect(ctx, g.Home, false)
	switch {
	case err != nil && sandbox != "":
		return fmt.Errorf("--sandbox %s changes a running sandbox, but the daemon is not running (start the sandbox with nemoclave run)", sandbox)
	case err != nil:
		fmt.Fprintln(out, "no daemon is running, so no running sandbox was changed and the model could not be checked against the provider")
	default:
		defer c.Close()
		res, err := c.InferenceSet(ctx, sandbox, provider, model)
		if err != nil && (sandbox != "" || !strings.Contains(err.Error(), "no sandbox is running")) {
			return err
		}
		if err == nil {
			fmt.Fprintf(out, "running sandboxes now using provider %s, model %s for their default alias: %s\n",
				res.Provider, res.Model, strings.Join(res.Sandboxes, ", "))
		}
	}
	if sandbox != "" {
		return nil
	}
	cfg, err := config.Load(g.Home)
	if err != nil {
		return err
	}
	cfg.Inference.Provider, cfg.Inference.Model = provider, model
	if err := config.Save(g.Home, cfg); err != nil {
		return fmt.Errorf("write %s: %w", config.Path(g.Home), err)
	}
	fmt.Fprintf(out, "wrote the default (provider %s, model %s) to %s: new runs of a blueprint with that provider use it for their default alias\n",
		provider, model, config.Path(g.Home))
	return nil
}
