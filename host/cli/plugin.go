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

func newPluginCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plugin",
		Short: "Install, list and inspect plugins",
		Long: "Plugins are separate binaries (nemoclave-plugin-<kind>-<name>) that nemoclave launches over gRPC.\n" +
			"Builtins ship beside the nemoclave binary; others are installed into $NEMOCLAVE_HOME/plugins\n" +
			"by address and version with their hash recorded in plugins.lock.json, and refused at launch\n" +
			"if they change. `nemoclave init` pins a blueprint's plugins in its .nemoclave.lock.hcl.",
	}
	cmd.AddCommand(newPluginInstallCmd(g), newPluginListCmd(g), newPluginInspectCmd(g), newPluginNewCmd(g))
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
	Hash        string   `json:"hash"`
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
	s := pluginSummary{Source: b.Source, Origin: string(b.Origin), Path: b.Path, SHA256: b.Checksum(), Hash: b.Hash}
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
	var req plugins.InstallRequest
	cmd := &cobra.Command{
		Use:   "install <host>/<namespace>/<name> --path <binary|dir|archive> [--version V]",
		Short: "Install a plugin under an address and version, and trust its hash",
		Long: "install runs the plugin once to check that it is a nemoclave plugin, copies it into\n" +
			"$NEMOCLAVE_HOME/plugins/<host>/<namespace>/<name>/<version>/ and records its hash in\n" +
			"plugins.lock.json. --path is a binary, a directory holding the plugin and its files (a\n" +
			"script with its modules; --entry names the executable if it is ambiguous), or a .tar.gz,\n" +
			".tgz, .tar or .zip archive of one. --version defaults to the version the plugin reports.\n" +
			"Other versions stay installed side by side; reinstalling a version replaces it.\n" +
			"Blueprints name it by address, with version = \"<constraint>\"; run `nemoclave init` to lock it.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if req.Path == "" {
				return fmt.Errorf("--path is required: the plugin binary, directory or archive to install")
			}
			req.Address = args[0]
			m, err := newPluginManager(g)
			if err != nil {
				return err
			}
			defer m.Close()
			b, err := m.Install(cmd.Context(), req)
			if err != nil {
				return err
			}
			s, _ := summarize(cmd.Context(), m, b)
			return Render(cmd.OutOrStdout(), g.Output, s, func(tw *tabwriter.Writer) {
				fmt.Fprintf(tw, "installed %s %s (%s)\nhash %s\n", b.Address, b.Version, strings.Join(s.Kinds, ","), b.Hash)
			})
		},
	}
	cmd.Flags().StringVar(&req.Path, "path", "", "plugin binary, directory or archive to install")
	cmd.Flags().StringVar(&req.Version, "version", "", "version to install it as (default: the version the plugin reports)")
	cmd.Flags().StringVar(&req.Entry, "entry", "", "for a directory or archive: the executable, relative to its root")
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
					fmt.Fprintf(tw, "(no plugins: builtins are looked for in %s; install others with `nemoclave plugin install <host>/<namespace>/<name> --path <binary>`)\n", m.BinDir())
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
			"short name (embeddings-hash), an installed address (the newest version, or address@version)\n" +
			"or a path to a binary.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := newPluginManager(g)
			if err != nil {
				return err
			}
			defer m.Close()
			b, err := m.Resolve(args[0])
			if err != nil && !strings.Contains(args[0], "/") {
				// A bare name is a builtin's short name, for convenience.
				bb, berr := m.Resolve(plugins.BuiltinPrefix + args[0])
				if berr != nil {
					return fmt.Errorf("%w; an installed plugin is named by its address: install one with `nemoclave plugin install <host>/<namespace>/<name> --path <binary>`", berr)
				}
				b, err = bb, nil
			}
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
