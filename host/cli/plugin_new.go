package cli

import (
	"bytes"
	"embed"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"

	"github.com/spf13/cobra"
)

// plugintmpl holds the scaffold `plugin new` writes: go.mod, go.sum and
// README.md for every kind, plugintmpl/<kind>/ the plugin and its test.
// go.mod and go.sum carry the SDK's dependencies, kept equal to
// examples/tools-wordcount's by TestPluginNewTemplatesMatchExample, so the
// new module builds offline with GOWORK=off out of the box.
//
//go:embed plugintmpl/*.tmpl plugintmpl/*/*.tmpl
var plugintmpl embed.FS

// scaffoldKinds are the kinds `plugin new` writes, in plugin.Kinds order,
// and whether the kind's skeleton uses the hashing embedding (hash.go).
var scaffoldKinds = []struct {
	kind string
	hash bool
}{{"llm", false}, {"embeddings", true}, {"retrieval", true}, {"memory", true}, {"tools", false}, {"dataproc", false}}

// scaffoldFiles lists the files of kind's scaffold: file name → template.
func scaffoldFiles(kind string) (map[string]string, error) {
	var names []string
	for _, k := range scaffoldKinds {
		names = append(names, k.kind)
		if k.kind != kind {
			continue
		}
		files := map[string]string{"go.mod": "go.mod.tmpl", "go.sum": "go.sum.tmpl", "README.md": "README.md.tmpl",
			"main.go": kind + "/main.go.tmpl", "main_test.go": kind + "/main_test.go.tmpl"}
		if k.hash {
			files["hash.go"] = "hash.go.tmpl"
		}
		return files, nil
	}
	return nil, fmt.Errorf("no plugin kind %q; plugin new writes %s", kind, strings.Join(names, ", "))
}

type scaffold struct {
	Kind, Name, Short, Binary, Module, SDKDir string
}

func newPluginNewCmd(g *Globals) *cobra.Command {
	var module, sdk string
	cmd := &cobra.Command{
		Use:   "new <kind> <dir>",
		Short: "Write a new plugin module: go.mod, a skeleton, its sdktest test and a README",
		Long: "new writes a Go module in <dir> (which must not exist or be empty) with a working plugin of\n" +
			"<kind>, a conformance test using the SDK's sdktest, and a README saying how to build, install\n" +
			"and use it. go.mod requires the SDK and replaces it with the sdk/ directory of the nemoclave\n" +
			"checkout this binary was built in (or --sdk), until the SDK is published under a tag.\n" +
			"Kinds: llm, embeddings, retrieval, memory, tools, dataproc.",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, dir := args[0], args[1]
			files, err := scaffoldFiles(kind)
			if err != nil {
				return err
			}
			if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
				return fmt.Errorf("%s exists and is not empty; give a new directory", dir)
			}
			abs, err := filepath.Abs(dir)
			if err != nil {
				return err
			}
			short := strings.ToLower(filepath.Base(abs))
			s := scaffold{Kind: kind, Short: short, Name: kind + "-" + short, Module: module}
			s.Binary = "nemoclave-plugin-" + s.Name
			if s.Module == "" {
				s.Module = "example.com/" + s.Name
			}
			if sdk == "" {
				sdk = checkoutSDK()
			}
			if sdk != "" {
				if s.SDKDir, err = filepath.Abs(sdk); err != nil {
					return err
				}
				if _, err := os.Stat(filepath.Join(s.SDKDir, "go.mod")); err != nil {
					return fmt.Errorf("--sdk %s: no go.mod there; give the sdk/ directory of a nemoclave checkout", sdk)
				}
			}
			if err := os.MkdirAll(abs, 0o755); err != nil {
				return err
			}
			for f, tmpl := range files {
				raw, err := plugintmpl.ReadFile("plugintmpl/" + tmpl)
				if err != nil {
					return err
				}
				t, err := template.New(f).Delims("[[", "]]").Parse(string(raw))
				if err != nil {
					return err
				}
				var buf bytes.Buffer
				if err := t.Execute(&buf, s); err != nil {
					return err
				}
				if err := os.WriteFile(filepath.Join(abs, f), buf.Bytes(), 0o644); err != nil {
					return err
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s plugin %s in %s\nnext: cd %s && GOWORK=off go test ./...\n", kind, s.Name, abs, dir)
			if s.SDKDir == "" {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning: no nemoclave checkout found for the SDK; add `replace github.com/nemoclave/nemoclave/sdk => <checkout>/sdk` to go.mod, or pass --sdk")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&module, "module", "", "module path (default example.com/<kind>-<dir name>)")
	cmd.Flags().StringVar(&sdk, "sdk", "", "the SDK directory go.mod replaces the SDK with (default: sdk/ of the checkout this nemoclave was built in)")
	return cmd
}

// checkoutSDK finds sdk/ beside the bin/ directory nemoclave runs from
// (make build puts it in <checkout>/bin), or "".
func checkoutSDK() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	if real, err := filepath.EvalSymlinks(exe); err == nil {
		exe = real
	}
	for dir := filepath.Dir(exe); dir != filepath.Dir(dir); dir = filepath.Dir(dir) {
		sdk := filepath.Join(dir, "sdk")
		if b, err := os.ReadFile(filepath.Join(sdk, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/nemoclave/nemoclave/sdk") {
			return sdk
		}
	}
	return ""
}
