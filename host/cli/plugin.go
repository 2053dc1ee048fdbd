package cli

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/nemoclave/nemoclave/host/plugins"
	"github.com/nemoclave/nemoclave/sdk/schema"
)

func init() { Register(newPluginCmd) }

func newPluginCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plugin",
		Short: "Install, list and inspect plugins",
		Long: "Plugins are separate binaries (nemoclave-plugin-<kind>-<name>) that nemoclave launches over gRPC.\n" +
			"Builtins ship beside the nemoclave binary; others are installed into $NEMOCLAVE_HOME/plugins\n" +
			"with their sha256 recorded in plugins.lock.json, and refused at launch if they change.",
	}
	cmd.AddCommand(newPluginInstallCmd(g), newPluginListCmd(g), newPluginInspectCmd(g))
	return cmd
}

// newPluginManager builds the manager the plugin commands share. Plugin
// logs go to stderr at NEMOCLAVE_LOG_LEVEL (default warn), so a plugin that
// fails to start says why.
func newPluginManager(g *Globals) (*plugins.Manager, error) {
	level := hclog.LevelFromString(os.Getenv("NEMOCLAVE_LOG_LEVEL"))
	if level == hclog.NoLevel {
		level = hclog.Warn
	}
	return plugins.New(plugins.Options{
		Home:   g.Home,
		Logger: hclog.New(&hclog.LoggerOptions{Name: "nemoclave", Output: os.Stderr, Level: level}),
	})
}

// pluginSummary is one plugin as list and install report it.
type pluginSummary struct {
	Source      string   `json:"source"`
	Origin      string   `json:"origin"`
	Path        string   `json:"path"`
	SHA256      string   `json:"sha256"`
	Name        string   `json:"name,omitempty"`
	Version     string   `json:"version,omitempty"`
	Kinds       []string `json:"kinds,omitempty"`
	Description string   `json:"description,omitempty"`
	// Error says why the plugin could not be asked for its info.
	Error string `json:"error,omitempty"`
}

// pluginInspection is what inspect prints.
type pluginInspection struct {
	pluginSummary
	ProtocolVersions []int          `json:"protocol_versions"`
	Capabilities     []string       `json:"capabilities,omitempty"`
	Schema           *schema.Schema `json:"schema"`
}

func summarize(ctx context.Context, m *plugins.Manager, b *plugins.Binary) (pluginSummary, *pluginInspection) {
	s := pluginSummary{Source: b.Source, Origin: string(b.Origin), Path: b.Path, SHA256: b.Checksum()}
	l, _, err := m.Client(ctx, b.Source)
	if err != nil {
		s.Error = err.Error()
		return s, nil
	}
	info, err := l.Info(ctx)
	if err != nil {
		s.Error = err.Error()
		return s, nil
	}
	s.Name, s.Version, s.Description = info.Name, info.Version, info.Description
	for _, k := range info.Kinds {
		s.Kinds = append(s.Kinds, string(k))
	}
	in := &pluginInspection{pluginSummary: s, ProtocolVersions: info.ProtocolVersions, Capabilities: info.Capabilities}
	sc, err := l.Schema(ctx)
	if err != nil {
		in.Error = "schema: " + err.Error()
		return s, in
	}
	in.Schema = sc
	return s, in
}

func newPluginInstallCmd(g *Globals) *cobra.Command {
	var path, name string
	cmd := &cobra.Command{
		Use:   "install --path <binary> [--name <name>]",
		Short: "Copy a plugin binary into $NEMOCLAVE_HOME/plugins and trust its sha256",
		Long: "install runs the binary once to check that it is a nemoclave plugin, copies it into\n" +
			"$NEMOCLAVE_HOME/plugins and records its sha256 in plugins.lock.json. Blueprints then name it\n" +
			"by --name (default: the file name without nemoclave-plugin-). Reinstalling a name replaces it.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if path == "" {
				return fmt.Errorf("--path is required: the plugin binary to install")
			}
			m, err := newPluginManager(g)
			if err != nil {
				return err
			}
			defer m.Close()
			b, err := m.Install(cmd.Context(), path, name)
			if err != nil {
				return err
			}
			s, _ := summarize(cmd.Context(), m, b)
			return Render(cmd.OutOrStdout(), g.Output, s, func(tw *tabwriter.Writer) {
				fmt.Fprintf(tw, "installed %s (%s %s)\nsha256 %s\n", s.Source, strings.Join(s.Kinds, ","), s.Version, s.SHA256)
			})
		},
	}
	cmd.Flags().StringVar(&path, "path", "", "plugin binary to install")
	cmd.Flags().StringVar(&name, "name", "", "name blueprints use for it (default: file name without nemoclave-plugin-)")
	return cmd
}

func newPluginListCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List builtin and installed plugins with their kinds and versions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := newPluginManager(g)
			if err != nil {
				return err
			}
			defer m.Close()
			builtins, err := m.Builtins()
			if err != nil {
				return err
			}
			installed, err := m.Installed()
			if err != nil {
				return err
			}
			all := append(builtins, installed...)
			rows := make([]pluginSummary, len(all))
			// Each row launches its plugin; a few at a time keeps a long
			// list quick without starting everything at once.
			sem := make(chan struct{}, 4)
			var wg sync.WaitGroup
			for i, b := range all {
				wg.Go(func() {
					sem <- struct{}{}
					defer func() { <-sem }()
					rows[i], _ = summarize(cmd.Context(), m, b)
				})
			}
			wg.Wait()
			return Render(cmd.OutOrStdout(), g.Output, rows, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "SOURCE\tORIGIN\tKINDS\tVERSION\tSHA256\tSTATUS")
				for _, r := range rows {
					st := "ok"
					if r.Error != "" {
						st = "error: " + firstLine(r.Error)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Source, r.Origin, strings.Join(r.Kinds, ","), r.Version, r.SHA256[:12], st)
				}
				if len(rows) == 0 {
					fmt.Fprintf(tw, "(no plugins: builtins are looked for in %s; install others with `nemoclave plugin install --path <binary>`)\n", m.BinDir())
				}
			})
		},
	}
}

func newPluginInspectCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect <source>",
		Short: "Show a plugin's kinds, version, protocol versions and config schema",
		Long: "inspect launches the plugin and asks it. <source> is builtin/<kind>-<name>, a builtin's\n" +
			"short name (embeddings-hash), an installed plugin's name or a path to a binary.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := newPluginManager(g)
			if err != nil {
				return err
			}
			defer m.Close()
			b, err := m.Resolve(args[0])
			if err != nil {
				return err
			}
			s, in := summarize(cmd.Context(), m, b)
			if in == nil {
				return fmt.Errorf("inspect %s: %s", b.Source, s.Error)
			}
			if in.Error != "" {
				return fmt.Errorf("inspect %s: %s", b.Source, in.Error)
			}
			return Render(cmd.OutOrStdout(), g.Output, in, func(tw *tabwriter.Writer) { inspectTable(tw, in) })
		},
	}
}

func inspectTable(tw *tabwriter.Writer, in *pluginInspection) {
	protos := make([]string, len(in.ProtocolVersions))
	for i, v := range in.ProtocolVersions {
		protos[i] = fmt.Sprint(v)
	}
	for _, kv := range [][2]string{
		{"SOURCE", in.Source}, {"ORIGIN", in.Origin}, {"PATH", in.Path}, {"SHA256", in.SHA256},
		{"NAME", in.Name}, {"VERSION", in.Version}, {"KINDS", strings.Join(in.Kinds, ", ")},
		{"PROTOCOLS", strings.Join(protos, ", ")}, {"CAPABILITIES", strings.Join(in.Capabilities, ", ")},
		{"DESCRIPTION", in.Description},
	} {
		fmt.Fprintf(tw, "%s\t%s\n", kv[0], kv[1])
	}
	fmt.Fprintln(tw)
	if in.Schema.Block.Description != "" {
		fmt.Fprintf(tw, "CONFIG\t%s\n", in.Schema.Block.Description)
	}
	fmt.Fprintln(tw, "ATTRIBUTE\tTYPE\tREQUIRED\tDEFAULT\tDESCRIPTION")
	schemaRows(tw, "", &in.Schema.Block)
}

// schemaRows prints one row per attribute, nested blocks as dotted paths.
func schemaRows(tw *tabwriter.Writer, prefix string, b *schema.Block) {
	for _, a := range b.Attributes {
		typ := a.Type
		switch {
		case a.PluginKind != "":
			typ = "plugin." + a.PluginKind
		case a.Credential:
			typ = "credential"
		case typ == "":
			typ = "string"
		}
		req := "no"
		if a.Required {
			req = "yes"
		}
		def := "-"
		if len(a.Default) > 0 {
			def = string(a.Default)
		}
		fmt.Fprintf(tw, "%s%s\t%s\t%s\t%s\t%s\n", prefix, a.Name, typ, req, def, a.Description)
	}
	for _, nb := range b.Blocks {
		fmt.Fprintf(tw, "%s%s { }\tblock (%s)\t%v\t-\t%s\n", prefix, nb.Name, nb.Nesting, nb.Required, nb.Block.Description)
		schemaRows(tw, prefix+nb.Name+".", &nb.Block)
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
