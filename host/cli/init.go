package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/nemoclave/nemoclave/blueprints"
	"github.com/nemoclave/nemoclave/host/plugins"
)

// lockedRow is one plugin as init reports it.
type lockedRow struct {
	Source      string   `json:"source"`
	Version     string   `json:"version,omitempty"`
	Constraints string   `json:"constraints,omitempty"`
	Hashes      []string `json:"hashes"`
	Path        string   `json:"path"`
}

func newInitCmd(g *Globals) *cobra.Command {
	var f blueprintFlags
	var upgrade bool
	cmd := &cobra.Command{
		Use:   "init [blueprint]",
		Short: "Lock the versions and checksums of a blueprint's plugins (.nemoclave.lock.hcl)",
		Long: "init resolves every plugin the blueprint uses that is not a builtin (installed addresses,\n" +
			"with their version constraints and required_plugins, and paths to binaries), and records\n" +
			"the version chosen and its hash in .nemoclave.lock.hcl beside the blueprint, as Terraform's\n" +
			".terraform.lock.hcl does. validate and run refuse a plugin that is not locked or whose files\n" +
			"no longer match. A locked version is kept while it is installed and allowed; -upgrade picks\n" +
			"the newest allowed version instead. Builtins ship with nemoclave and are not locked.\n" +
			"For plugin development, $NEMOCLAVE_HOME/dev_overrides.hcl overrides a source (with a warning).",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := "."
			if len(args) == 1 {
				path = args[0]
			}
			bp, err := loadForInit(cmd, g, &f, path)
			if err != nil {
				return err
			}
			m, err := newPluginManager(g)
			if err != nil {
				return err
			}
			defer m.Close()
			lock, err := plugins.ReadProjectLock(bp.Dir)
			if err != nil {
				return err
			}
			type want struct{ source, constraint string }
			var wants []want
			seen := map[string]int{}
			add := func(source, constraint string) {
				key, err := plugins.LockKey(bp.Dir, source)
				if err != nil || key == "" {
					return
				}
				if i, ok := seen[key]; ok {
					if constraint != "" && !strings.Contains(wants[i].constraint, constraint) {
						wants[i].constraint = strings.TrimPrefix(wants[i].constraint+", "+constraint, ", ")
					}
					return
				}
				seen[key] = len(wants)
				wants = append(wants, want{source, constraint})
			}
			for _, p := range bp.Plugins {
				switch p.SourceType {
				case blueprints.SourceInstalled:
					add(p.Source, p.Version)
				case blueprints.SourcePath:
					add(p.Path, "")
				}
			}
			for _, rp := range bp.Settings.RequiredPlugins {
				src := rp.Source
				if strings.HasPrefix(src, "./") || strings.HasPrefix(src, "../") {
					src = filepath.Join(bp.Dir, src)
				}
				add(src, rp.Version)
			}
			next := &plugins.ProjectLock{Path: lock.Path, Exists: lock.Exists, Plugins: map[string]*plugins.LockedPlugin{}}
			var rows []lockedRow
			for _, w := range wants {
				lp, b, err := m.LockPlugin(lock, bp.Dir, w.source, w.constraint, upgrade)
				if err != nil {
					return err
				}
				next.Plugins[lp.Source] = lp
				rows = append(rows, lockedRow{Source: lp.Source, Version: lp.Version, Constraints: lp.Constraints, Hashes: lp.Hashes, Path: b.Path})
			}
			if len(wants) == 0 && !lock.Exists {
				return Render(cmd.OutOrStdout(), g.Output, rows, func(tw *tabwriter.Writer) {
					fmt.Fprintln(tw, "nothing to lock: the blueprint uses only builtin plugins")
				})
			}
			if err := next.Write(); err != nil {
				return err
			}
			return Render(cmd.OutOrStdout(), g.Output, rows, func(tw *tabwriter.Writer) {
				fmt.Fprintf(tw, "wrote %s\n", next.Path)
				fmt.Fprintln(tw, "SOURCE\tVERSION\tCONSTRAINTS\tHASH")
				for _, r := range rows {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Source, dash(r.Version), dash(r.Constraints), strings.Join(r.Hashes, " "))
				}
			})
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&upgrade, "upgrade", false, "pick the newest installed version each constraint allows, even if another is locked")
	allowSingleDash(cmd, "upgrade", "var", "var-file", "preset-dir")
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// loadForInit evaluates the blueprint with the static schema source: init
// runs before the plugins are locked, so it must not ask the plugin host
// (which refuses unlocked plugins); config blocks are checked by validate.
func loadForInit(cmd *cobra.Command, g *Globals, f *blueprintFlags, path string) (*blueprints.Blueprint, error) {
	vars := map[string]string{}
	for _, kv := range f.vars {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--var %q: write --var name=value", kv)
		}
		vars[k] = v
	}
	dirs := f.presetDirs
	if len(dirs) == 0 {
		if st, err := os.Stat(filepath.Join(g.Home, "presets")); err == nil && st.IsDir() {
			dirs = []string{filepath.Join(g.Home, "presets")}
		}
	}
	l := blueprints.NewLoader(blueprints.Options{Vars: vars, VarFiles: f.varFiles, Schemas: blueprints.BuiltinSchemaSource(), PresetDirs: dirs})
	bp, diags := l.Load(cmd.Context(), path)
	var errs = diags.Errs()
	if len(errs) > 0 {
		_ = blueprints.WriteDiagnostics(cmd.ErrOrStderr(), l.Files(), diags, 100)
		return nil, &ExitError{Code: 1}
	}
	return bp, nil
}
