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
	"github.com/spf13/pflag"

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
	// The sandbox-first form, `nemoclave <sandbox> connect` (Main rewrites
	// it to `sandbox connect <sandbox>`, and what follows `connect`
	// completes as there): the first word offers the sandboxes besides
	// the commands, the second `connect` after a sandbox's name.
	if root.ValidArgsFunction == nil {
		root.ValidArgsFunction = func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			switch len(args) {
			case 0:
				var out []string
				for _, s := range sandboxNames(g) {
					name, state, _ := strings.Cut(s, "\t")
					out = append(out, name+"\tsandbox ("+state+"): nemoclave "+name+" connect")
				}
				return out, cobra.ShellCompDirectiveNoFileComp
			case 1:
				for _, s := range sandboxNames(g) {
					if name, _, _ := strings.Cut(s, "\t"); name == args[0] {
						return []string{"connect\tattach to the sandbox's agent (sandbox connect " + name + ")"}, cobra.ShellCompDirectiveNoFileComp
					}
				}
			}
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
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
		{"run", "attach-agent", runAgents},
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
	// run, validate and plan parse their flags themselves (-var as
	// Terraform writes it), so cobra hands every word to their argument
	// completion: route a flag's value to the flag's completion, and give
	// the argument completion only the positional words.
	for _, path := range []string{"run", "validate", "plan"} {
		if c := findCommand(root, path); c != nil && c.DisableFlagParsing && c.ValidArgsFunction != nil {
			c.ValidArgsFunction = withOwnFlagParsing(c.ValidArgsFunction)
		}
	}
}

// withOwnFlagParsing adapts fn, the argument completion of a command with
// DisableFlagParsing, to the raw words it then gets.
func withOwnFlagParsing(fn completeFunc) completeFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if strings.HasPrefix(toComplete, "-") {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		// takesValue is the flag a word names, when it needs a value
		// after it ("--var-file", "-var-file", not "-d" nor "--x=y").
		takesValue := func(word string) *pflag.Flag {
			if !strings.HasPrefix(word, "-") || word == "-" || strings.Contains(word, "=") {
				return nil
			}
			name := strings.TrimLeft(word, "-")
			f := cmd.Flags().Lookup(name)
			if f == nil && len(name) == 1 {
				f = cmd.Flags().ShorthandLookup(name)
			}
			if f == nil || f.NoOptDefVal != "" {
				return nil
			}
			return f
		}
		var positional []string
		for i := 0; i < len(args); i++ {
			if args[i] == "--" {
				positional = append(positional, args[i+1:]...)
				break
			}
			if strings.HasPrefix(args[i], "-") && args[i] != "-" {
				if takesValue(args[i]) != nil && i+1 < len(args) {
					i++ // its value
				}
				continue
			}
			positional = append(positional, args[i])
		}
		if len(args) > 0 {
			if f := takesValue(args[len(args)-1]); f != nil {
				if flagFn, ok := cmd.GetFlagCompletionFunc(f.Name); ok {
					return flagFn(cmd, positional, toComplete)
				}
				return nil, cobra.ShellCompDirectiveDefault
			}
		}
		return fn(cmd, positional, toComplete)
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
// providers complete before anything runs.
func blueprintProviders(dir string) []string {
	var out []string
	for _, labels := range blueprintBlocks(dir, "plugin", 2) {
		if labels[0] == "llm" {
			out = append(out, labels[1])
		}
	}
	return out
}

// blueprintBlocks are the labels of the top-level blocks of type typ with
// n labels in the blueprint at path (a file, or the *.hcl files of a
// directory). Only the syntax is read: nothing is evaluated, and a file
// that does not parse adds nothing.
func blueprintBlocks(path, typ string, n int) [][]string {
	files := []string{path}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		files, _ = filepath.Glob(filepath.Join(path, "*.hcl"))
	}
	var out [][]string
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
			if b.Type == typ && len(b.Labels) == n {
				out = append(out, b.Labels)
			}
		}
	}
	return out
}

// runAgents are the agents of the blueprint `run` was given (a file, or
// the *.hcl files of a directory), as --attach-agent takes them.
func runAgents(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) == 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	for _, b := range blueprintBlocks(args[0], "agent", 1) {
		out = append(out, b[0])
	}
	return uniqSorted(out), cobra.ShellCompDirectiveNoFileComp
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
