package cli

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/hashicorp/hcl/v2"
	"github.com/spf13/cobra"
)

func newValidateCmd(g *Globals) *cobra.Command {
	var f blueprintFlags
	cmd := &cobra.Command{
		Use:   "validate <file|dir>",
		Short: "Check a blueprint: syntax, references, types, plugin configs and policies",
		Long: `Validate evaluates a blueprint (a .hcl or .hcl.json file, or a directory of
them) without running anything, and prints every problem with its file, line,
column and a source snippet. It exits 0 when the blueprint is valid and 1
otherwise. Plugin config blocks are checked against the schemas the plugins
declare. With -o json it prints {"valid": ..., "diagnostics": [...]} on
standard output instead, for editors and CI.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if g.Output == "json" {
				return validateJSON(cmd, g, &f, args[0])
			}
			if _, err := f.load(cmd.Context(), g, cmd.ErrOrStderr(), args[0]); err != nil {
				return err
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "%s: the blueprint is valid.\n", args[0])
			return err
		},
	}
	f.register(cmd)
	allowSingleDash(cmd, "var", "var-file", "preset-dir", "home", "output")
	return cmd
}

// jsonDiagnostic is one diagnostic in validate -o json.
type jsonDiagnostic struct {
	Severity string     `json:"severity"`
	Summary  string     `json:"summary"`
	Detail   string     `json:"detail,omitempty"`
	Range    *jsonRange `json:"range,omitempty"`
	// Snippet is the source line(s) the range covers.
	Snippet string `json:"snippet,omitempty"`
}

type jsonRange struct {
	Filename string  `json:"filename"`
	Start    jsonPos `json:"start"`
	End      jsonPos `json:"end"`
}

type jsonPos struct {
	Line   int `json:"line"`
	Column int `json:"column"`
	Byte   int `json:"byte"`
}

func validateJSON(cmd *cobra.Command, g *Globals, f *blueprintFlags, path string) error {
	_, diags, files, err := f.evaluate(cmd.Context(), g, path)
	if err != nil {
		return err
	}
	out := struct {
		Valid       bool             `json:"valid"`
		Diagnostics []jsonDiagnostic `json:"diagnostics"`
	}{Valid: !diags.HasErrors(), Diagnostics: []jsonDiagnostic{}}
	for _, d := range diags {
		jd := jsonDiagnostic{Severity: "error", Summary: d.Summary, Detail: d.Detail}
		if d.Severity == hcl.DiagWarning {
			jd.Severity = "warning"
		}
		if r := d.Subject; r != nil {
			jd.Range = &jsonRange{
				Filename: r.Filename,
				Start:    jsonPos{r.Start.Line, r.Start.Column, r.Start.Byte},
				End:      jsonPos{r.End.Line, r.End.Column, r.End.Byte},
			}
			jd.Snippet = snippet(files[r.Filename], *r)
		}
		out.Diagnostics = append(out.Diagnostics, jd)
	}
	if err := writeJSON(cmd.OutOrStdout(), out); err != nil {
		return err
	}
	if diags.HasErrors() {
		return &ExitError{Code: 1}
	}
	return nil
}

// snippet returns the whole source lines a range touches.
func snippet(f *hcl.File, r hcl.Range) string {
	if f == nil || r.Start.Byte < 0 || r.End.Byte > len(f.Bytes) || r.Start.Byte > r.End.Byte {
		return ""
	}
	src := f.Bytes
	start, end := r.Start.Byte, r.End.Byte
	for start > 0 && src[start-1] != '\n' {
		start--
	}
	for end < len(src) && src[end] != '\n' {
		end++
	}
	return string(src[start:end])
}

// writeJSON writes v indented, without HTML escaping (constraints such as
// ">= 0.1" stay readable).
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
