package blueprints

import (
	"bytes"
	"fmt"
	"io"

	"github.com/hashicorp/hcl/v2"
)

// WriteDiagnostics renders diagnostics for people: one
// "file:line:col: severity: summary" line each (the form editors jump
// to), followed by hcl's text rendering with the source snippet and
// detail. files are the parsed files (Loader.Files) snippets come from.
func WriteDiagnostics(w io.Writer, files map[string]*hcl.File, diags hcl.Diagnostics, width uint) error {
	tw := hcl.NewDiagnosticTextWriter(w, files, width, false)
	for _, d := range diags {
		sev := "error"
		if d.Severity == hcl.DiagWarning {
			sev = "warning"
		}
		loc := "<command line>"
		if d.Subject != nil {
			loc = fmt.Sprintf("%s:%d:%d", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
		}
		if _, err := fmt.Fprintf(w, "%s: %s: %s\n", loc, sev, d.Summary); err != nil {
			return err
		}
		if err := tw.WriteDiagnostic(d); err != nil {
			return err
		}
	}
	return nil
}

// FormatDiagnostics is WriteDiagnostics into a string; width 0 means no
// wrapping.
func FormatDiagnostics(files map[string]*hcl.File, diags hcl.Diagnostics, width uint) string {
	var b bytes.Buffer
	_ = WriteDiagnostics(&b, files, diags, width)
	return b.String()
}
