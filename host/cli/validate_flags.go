package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/nemoclave/nemoclave/blueprints"
	"github.com/spf13/cobra"
)

// blueprintFlags are the inputs validate and plan share.
type blueprintFlags struct {
	vars       []string
	varFiles   []string
	presetDirs []string
}

func (f *blueprintFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&f.vars, "var", nil, "set a variable: --var name=value (repeatable)")
	cmd.Flags().StringArrayVar(&f.varFiles, "var-file", nil, "read variables from an HCL or JSON file (repeatable)")
	cmd.Flags().StringArrayVar(&f.presetDirs, "preset-dir", nil, "directory of extra policy presets (default $NEMOCLAVE_HOME/presets when it exists)")
}

// load evaluates the blueprint at path, writing every diagnostic to
// stderr. It returns nil and an ExitError when there are errors.
func (f *blueprintFlags) load(ctx context.Context, g *Globals, stderr io.Writer, path string) (*blueprints.Blueprint, error) {
	bp, diags, files, err := f.evaluate(ctx, g, path)
	if err != nil {
		return nil, err
	}
	if len(diags) > 0 {
		if err := blueprints.WriteDiagnostics(stderr, files, diags, 100); err != nil {
			return nil, err
		}
	}
	if diags.HasErrors() {
		return nil, &ExitError{Code: 1}
	}
	return bp, nil
}

// evaluate loads the blueprint and returns its diagnostics unrendered, with
// the files they point into. err is for problems outside the blueprint
// (bad flags, no plugin host).
func (f *blueprintFlags) evaluate(ctx context.Context, g *Globals, path string) (*blueprints.Blueprint, hcl.Diagnostics, map[string]*hcl.File, error) {
	vars := map[string]string{}
	for _, kv := range f.vars {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, nil, nil, fmt.Errorf("--var %q: write --var name=value", kv)
		}
		vars[k] = v
	}
	dirs := f.presetDirs
	if len(dirs) == 0 {
		if st, err := os.Stat(filepath.Join(g.Home, "presets")); err == nil && st.IsDir() {
			dirs = []string{filepath.Join(g.Home, "presets")}
		}
	}
	src, release, err := schemaSource(ctx, g)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("cannot prepare plugin schemas: %w", err)
	}
	defer release()
	host, err := newValidateHost(ctx, g.Home)
	if err != nil {
		return nil, nil, nil, err
	}
	l := blueprints.NewLoader(blueprints.Options{Vars: vars, VarFiles: f.varFiles, Schemas: src, PresetDirs: dirs, Host: host, DaemonHome: g.Home})
	bp, diags := l.Load(ctx, path)
	return bp, diags, l.Files(), nil
}

// allowSingleDash lets a command accept its long flags with one dash
// (-check, -var), as Terraform and Packer users type them. pflag would
// read -check as five shorthand flags; the args are rewritten first.
func allowSingleDash(cmd *cobra.Command, long ...string) {
	run, args := cmd.RunE, cmd.Args
	cmd.Args = nil
	cmd.DisableFlagParsing = true
	cmd.RunE = func(c *cobra.Command, raw []string) error {
		// ParseFlags is a no-op while DisableFlagParsing is set.
		c.DisableFlagParsing = false
		err := c.ParseFlags(normalizeSingleDash(raw, long))
		c.DisableFlagParsing = true
		if err != nil {
			return fmt.Errorf("%w (run '%s --help' for usage)", err, c.CommandPath())
		}
		if help, _ := c.Flags().GetBool("help"); help {
			return c.Help()
		}
		rest := c.Flags().Args()
		if args != nil {
			if err := args(c, rest); err != nil {
				return err
			}
		}
		return run(c, rest)
	}
}

func normalizeSingleDash(args, long []string) []string {
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(a, "-"), "=")
		if strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "--") {
			for _, l := range long {
				if name == l {
					a = "-" + a
					break
				}
			}
		}
		out = append(out, a)
	}
	return out
}
