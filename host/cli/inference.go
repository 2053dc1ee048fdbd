package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/nemoclave/nemoclave/gateway/inference"
	"github.com/nemoclave/nemoclave/host/config"
	"github.com/nemoclave/nemoclave/host/daemon"
	"github.com/nemoclave/nemoclave/host/runtime"
	"github.com/nemoclave/nemoclave/host/state"
)

func init() { Register(newInferenceCmd) }

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

// inferenceReport is `inference status`.
type inferenceReport struct {
	// Default is config.yaml's inference block: what new runs start with.
	Default config.Inference `json:"default"`
	// DaemonRunning says whether Live could be asked for.
	DaemonRunning bool `json:"daemon_running"`
	// Live is each running sandbox's routes, provider health and budget
	// use, from the daemon; empty when it is not running.
	Live []json.RawMessage `json:"live"`
	// UsageToday and UsageMonth are recorded usage from usage.db.
	UsageToday []inference.UsageTotal `json:"usage_today"`
	UsageMonth []inference.UsageTotal `json:"usage_month"`
	UsageFile  string                 `json:"usage_file"`
	Notes      []string               `json:"notes,omitempty"`
}

func newInferenceStatusCmd(g *Globals) *cobra.Command {
	var sandbox string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the default model, live routes and provider health, and token usage",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			rep := inferenceReport{Live: []json.RawMessage{}}
			cfg, err := config.Load(g.Home)
			if err != nil {
				return err
			}
			rep.Default = cfg.Inference
			if c, err := daemon.Connect(ctx, g.Home, false); err == nil {
				defer c.Close()
				rep.DaemonRunning = true
				raw, err := c.Call(ctx, "InferenceStatus", sandbox)
				if err != nil {
					return fmt.Errorf("ask the daemon for inference status: %w", err)
				}
				if err := json.Unmarshal(raw, &rep.Live); err != nil {
					return fmt.Errorf("the daemon sent unreadable inference status: %w", err)
				}
			} else {
				rep.Notes = append(rep.Notes, "the daemon is not running, so no live routes or provider health are shown (they exist while a sandbox runs: nemoclave run)")
			}
			if err := readUsage(ctx, g.Home, sandbox, &rep); err != nil {
				return err
			}
			return Render(cmd.OutOrStdout(), g.Output, rep, func(tw *tabwriter.Writer) { renderInference(tw, rep) })
		},
	}
	cmd.Flags().StringVar(&sandbox, "sandbox", "", "only this sandbox")
	return cmd
}

// readUsage fills usage totals from usage.db without creating it.
// A daemon whose state is in PostgreSQL ($NEMOCLAVE_STATE_URL, as the
// daemon's --state-url defaults to) records usage there: every replica's
// sandboxes, read from any replica.
func readUsage(ctx context.Context, home, sandbox string, rep *inferenceReport) error {
	var store *inference.SQLUsage
	var err error
	if url := os.Getenv("NEMOCLAVE_STATE_URL"); state.IsPostgresURL(url) {
		rep.UsageFile = redactedURL(url)
		store, err = inference.OpenPostgresUsage(ctx, url)
	} else {
		rep.UsageFile = filepath.Join(home, inference.UsageFileName)
		if _, err := os.Stat(rep.UsageFile); errors.Is(err, os.ErrNotExist) {
			rep.Notes = append(rep.Notes, "no usage recorded yet ("+rep.UsageFile+" does not exist)")
			return nil
		}
		store, err = inference.OpenSQLiteUsage(rep.UsageFile)
	}
	if err != nil {
		return err
	}
	defer store.Close()
	now := time.Now().UTC()
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	if rep.UsageToday, err = store.Totals(ctx, inference.UsageQuery{Sandbox: sandbox, Since: day}); err != nil {
		return err
	}
	rep.UsageMonth, err = store.Totals(ctx, inference.UsageQuery{Sandbox: sandbox, Since: time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)})
	return err
}

func renderInference(tw *tabwriter.Writer, rep inferenceReport) {
	d := rep.Default
	if d.Provider == "" && d.Model == "" {
		fmt.Fprintln(tw, "default:\tnone set (nemoclave inference set --provider P --model M)")
	} else {
		fmt.Fprintf(tw, "default:\t%s %s\n", d.Provider, d.Model)
	}
	for _, raw := range rep.Live {
		var v struct {
			Sandbox string           `json:"sandbox"`
			Status  inference.Status `json:"status"`
		}
		if json.Unmarshal(raw, &v) != nil {
			continue
		}
		st := v.Status
		fmt.Fprintf(tw, "\nsandbox %s (default alias %s)\n", v.Sandbox, st.Default)
		fmt.Fprintln(tw, "ALIAS\tPROVIDER\tMODEL\tFALLBACK")
		for _, r := range st.Routes {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%v\n", r.Alias, r.Provider, r.Model, r.Fallback)
		}
		for _, p := range st.Providers {
			fmt.Fprintf(tw, "provider %s:\t%s\t%d consecutive failures\t%s\n", p.Provider, p.State, p.ConsecutiveFailures, p.LastError)
		}
		b := st.Usage
		fmt.Fprintf(tw, "budget:\t%d tokens today (limit %s), %d this month (limit %s), $%.4f today\n",
			b.TokensToday, limitString(b.Budget.TokensPerDay), b.TokensMonth, limitString(b.Budget.TokensPerMonth), b.CostTodayUSD)
	}
	fmt.Fprintln(tw)
	if len(rep.UsageMonth) > 0 {
		fmt.Fprintln(tw, "USAGE THIS MONTH\tSANDBOX\tALIAS\tPROVIDER\tMODEL\tREQUESTS\tINPUT\tOUTPUT\tCOST USD")
		for _, u := range rep.UsageMonth {
			fmt.Fprintf(tw, "\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%.4f\n", u.Sandbox, u.Alias, u.Provider, u.Model, u.Requests, u.InputTokens, u.OutputTokens, u.CostUSD)
		}
	}
	for _, n := range rep.Notes {
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
		raw, err := c.InferenceSet(ctx, sandbox, provider, model)
		if err != nil && (sandbox != "" || !strings.Contains(err.Error(), "no sandbox is running")) {
			return err
		}
		if err == nil {
			var res struct {
				Sandboxes []string `json:"sandboxes"`
			}
			_ = json.Unmarshal(raw, &res)
			fmt.Fprintf(out, "running sandboxes now using provider %s, model %s for their default alias: %s\n",
				runtime.ProviderAddress(provider), model, strings.Join(res.Sandboxes, ", "))
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

// redactedURL is a database URL without its password.
func redactedURL(raw string) string {
	u, err := neturl.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
