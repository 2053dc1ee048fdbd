package cli

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/spf13/cobra"

	pb "github.com/nemoclave/nemoclave/host/api/daemonpb"
	"github.com/nemoclave/nemoclave/host/config"
	"github.com/nemoclave/nemoclave/host/credentials"
	"github.com/nemoclave/nemoclave/host/daemon"
	"github.com/nemoclave/nemoclave/host/onboard"
)

// Shell completion (`nemoclave completion bash|zsh|fish|powershell`, from
// cobra) completes commands and flags by itself; the functions here add
// the values only a running installation knows: sandbox names, pending
// approval ids, providers and models, presets, credential names, log
// sources and blueprint files. They ask the daemon of --home without
// starting one (a <TAB> must never start a daemon) and answer nothing when
// it is not running, so completion is never slow or wrong, only shorter.

// completionTimeout bounds one daemon question during a <TAB>.
const completionTimeout = 2 * time.Second

type completeFunc = func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective)

// addCompletions wires the dynamic completions into the command tree built
// by NewRoot. Commands are found by path so the files that define them
// need not know about completion.
func addCompletions(root *cobra.Command, g *Globals) {
	sandboxes := func(_ *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
		return sandboxNames(g), cobra.ShellCompDirectiveNoFileComp
	}
	firstSandbox := func(then completeFunc) completeFunc {
		return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			if len(args) == 0 {
				return sandboxNames(g), cobra.ShellCompDirectiveNoFileComp
			}
			if then == nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return then(cmd, args, toComplete)
		}
	}
	blueprintFiles := func(_ *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
		return []string{"hcl"}, cobra.ShellCompDirectiveFilterFileExt
	}
	oneBlueprint := func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return blueprintFiles(cmd, args, toComplete)
	}
	presets := func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		names, _ := knownPresets(g.Home)
		return without(names, args), cobra.ShellCompDirectiveNoFileComp
	}
	fixed := func(values ...string) completeFunc {
		return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return values, cobra.ShellCompDirectiveNoFileComp
		}
	}
	dirs := func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return nil, cobra.ShellCompDirectiveFilterDirs
	}
	jsonFiles := func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"json"}, cobra.ShellCompDirectiveFilterFileExt
	}

	args := map[string]completeFunc{
		"sandbox get":       firstSandbox(nil),
		"sandbox connect":   firstSandbox(nil),
		"sandbox exec":      firstSandbox(nil),
		"sandbox delete":    sandboxes,
		"logs":              firstSandbox(nil),
		"policy get":        firstSandbox(nil),
		"policy set":        firstSandbox(nil),
		"policy add-preset": firstSandbox(presets),
		"approvals approve": approvalIDs(g),
		"approvals deny":    approvalIDs(g),
		"run":               oneBlueprint,
		"validate":          oneBlueprint,
		"plan":              oneBlueprint,
		"init":              oneBlueprint,
		"fmt":               blueprintFiles,
		"provider remove":   storedCredentials(g),
		"provider add":      fixed(catalogueCredentials()...),
	}
	for path, fn := range args {
		if fn == nil {
			continue
		}
		if c := findCommand(root, path); c != nil && c.ValidArgsFunction == nil {
			c.ValidArgsFunction = fn
		}
	}
	flags := []struct {
		path, flag string
		fn         completeFunc
	}{
		{"logs", "source", fixed("sandbox", "gateway", "plugin", "audit")},
		{"approvals list", "sandbox", sandboxes},
		{"inference status", "sandbox", sandboxes},
		{"inference set", "sandbox", sandboxes},
		{"inference set", "provider", inferenceProviders(g)},
		{"inference set", "model", inferenceModels(g)},
		{"onboard", "provider", onboardProviders},
		{"onboard", "model", onboardModels},
		{"onboard", "presets", presets},
		{"onboard", "cassette", jsonFiles},
		{"onboard", "dir", dirs},
		{"run", "var-file", blueprintFiles},
		{"run", "preset-dir", dirs},
		{"validate", "var-file", blueprintFiles},
		{"plan", "var-file", blueprintFiles},
		{"policy set", "file", jsonFiles},
	}
	for _, f := range flags {
		c := findCommand(root, f.path)
		if c == nil || c.Flags().Lookup(f.flag) == nil {
			continue
		}
		_ = c.RegisterFlagCompletionFunc(f.flag, f.fn)
	}
}

// findCommand returns the command at path ("policy add-preset"), or nil.
func findCommand(root *cobra.Command, path string) *cobra.Command {
	c, rest, err := root.Find(strings.Fields(path))
	if err != nil || len(rest) > 0 || c == root || c.CommandPath() != root.Name()+" "+path {
		return nil
	}
	return c
}

// askDaemon runs call against the daemon of --home if it runs.
func askDaemon(g *Globals, call func(context.Context, *daemon.Client) error) bool {
	ctx, cancel := context.WithTimeout(context.Background(), completionTimeout)
	defer cancel()
	c, err := daemon.Connect(ctx, g.Home, false)
	if err != nil {
		return false
	}
	defer c.Close()
	return call(ctx, c) == nil
}

func sandboxNames(g *Globals) []string {
	var list []*pb.Sandbox
	if !askDaemon(g, func(ctx context.Context, c *daemon.Client) (err error) { list, err = c.ListSandboxes(ctx); return err }) {
		return nil
	}
	out := make([]string, 0, len(list))
	for _, s := range list {
		out = append(out, s.Name+"\t"+s.State)
	}
	return out
}

func approvalIDs(g *Globals) completeFunc {
	return func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var list []*pb.Approval
		if !askDaemon(g, func(ctx context.Context, c *daemon.Client) (err error) {
			list, err = c.ListApprovals(ctx, "")
			return err
		}) {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		out := make([]string, 0, len(list))
		for _, a := range list {
			out = append(out, a.Id+"\t"+a.Sandbox+" wants "+a.Host)
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// liveRoutes are the routes of the running sandboxes.
func liveRoutes(g *Globals) []struct{ Provider, Model string } {
	var st *pb.InferenceStatusResponse
	if !askDaemon(g, func(ctx context.Context, c *daemon.Client) (err error) {
		st, err = c.InferenceStatus(ctx, "")
		return err
	}) {
		return nil
	}
	var out []struct{ Provider, Model string }
	for _, v := range st.Live {
		for _, r := range v.Routes {
			out = append(out, struct{ Provider, Model string }{r.Provider, r.Model})
		}
		for _, p := range v.Providers {
			out = append(out, struct{ Provider, Model string }{p.Provider, ""})
		}
	}
	return out
}

// inferenceProviders are the llm providers of running sandboxes, named
// as blueprints name them, and config.yaml's default.
func inferenceProviders(g *Globals) completeFunc {
	return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		var out []string
		for _, r := range liveRoutes(g) {
			out = append(out, strings.TrimPrefix(r.Provider, "plugin.llm."))
		}
		if cfg, err := config.Load(g.Home); err == nil && cfg.Inference.Provider != "" {
			out = append(out, cfg.Inference.Provider)
		}
		out = append(out, blueprintProviders(".")...)
		return uniqSorted(out), cobra.ShellCompDirectiveNoFileComp
	}
}

// blueprintProviders are the llm plugins the blueprints in dir declare
// (plugin "llm" "main" → main), as `inference set` takes them, so the
// providers complete before anything runs. Only the syntax is read:
// nothing is evaluated, and a file that does not parse adds nothing.
func blueprintProviders(dir string) []string {
	files, _ := filepath.Glob(filepath.Join(dir, "*.hcl"))
	var out []string
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil || len(src) > 1<<20 {
			continue
		}
		file, diags := hclsyntax.ParseConfig(src, f, hcl.InitialPos)
		if diags.HasErrors() {
			continue
		}
		body, ok := file.Body.(*hclsyntax.Body)
		if !ok {
			continue
		}
		for _, b := range body.Blocks {
			if b.Type == "plugin" && len(b.Labels) == 2 && b.Labels[0] == "llm" {
				out = append(out, b.Labels[1])
			}
		}
	}
	return out
}

// inferenceModels are the models running sandboxes route to, config.yaml's
// default and the models onboard offers.
func inferenceModels(g *Globals) completeFunc {
	return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		var out []string
		for _, r := range liveRoutes(g) {
			if r.Model != "" {
				out = append(out, r.Model)
			}
		}
		if cfg, err := config.Load(g.Home); err == nil && cfg.Inference.Model != "" {
			out = append(out, cfg.Inference.Model)
		}
		for _, p := range onboard.Providers {
			out = append(out, p.Models...)
		}
		return uniqSorted(out), cobra.ShellCompDirectiveNoFileComp
	}
}

func onboardProviders(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	out := make([]string, 0, len(onboard.Providers))
	for _, p := range onboard.Providers {
		out = append(out, p.ID+"\t"+p.Label)
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// onboardModels are the catalogue's models of --provider (every
// provider's when none is given yet).
func onboardModels(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
	id, _ := cmd.Flags().GetString("provider")
	var out []string
	for _, p := range onboard.Providers {
		if id == "" || p.ID == id {
			out = append(out, p.Models...)
		}
	}
	return uniqSorted(out), cobra.ShellCompDirectiveNoFileComp
}

func storedCredentials(g *Globals) completeFunc {
	return func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		infos, err := credentials.NewFile(g.Home).List(context.Background())
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []string
		for _, i := range infos {
			out = append(out, i.Name)
		}
		return uniqSorted(out), cobra.ShellCompDirectiveNoFileComp
	}
}

func catalogueCredentials() []string {
	var out []string
	for _, p := range onboard.Providers {
		if p.Credential != "" {
			out = append(out, p.Credential)
		}
	}
	return uniqSorted(out)
}

func uniqSorted(in []string) []string {
	sort.Strings(in)
	return slices.Compact(in)
}

func without(all, used []string) []string {
	var out []string
	for _, a := range all {
		if !slices.Contains(used, a) {
			out = append(out, a)
		}
	}
	return out
}
