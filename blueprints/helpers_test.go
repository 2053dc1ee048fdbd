package blueprints

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// loadString evaluates one in-memory blueprint file with the test schemas.
func loadString(t *testing.T, src string, opts Options) (*Blueprint, hcl.Diagnostics, *Loader) {
	t.Helper()
	if opts.Schemas == nil {
		opts.Schemas = testSchemas()
	}
	if opts.LookupEnv == nil {
		opts.LookupEnv = testEnv
	}
	l := NewLoader(opts)
	bp, diags := l.LoadSources(context.Background(), "testdata/valid", map[string][]byte{"test.hcl": []byte(src)})
	return bp, diags, l
}

// mustLoad fails the test on any error diagnostic.
func mustLoad(t *testing.T, src string, opts Options) *Blueprint {
	t.Helper()
	bp, diags, l := loadString(t, src, opts)
	if diags.HasErrors() {
		t.Fatalf("unexpected diagnostics:\n%s", FormatDiagnostics(l.Files(), diags, 0))
	}
	return bp
}

// wantError fails unless some error diagnostic's summary contains want.
func wantError(t *testing.T, src string, opts Options, want string) hcl.Diagnostics {
	t.Helper()
	_, diags, l := loadString(t, src, opts)
	for _, d := range diags {
		if d.Severity == hcl.DiagError && strings.Contains(d.Summary+" "+d.Detail, want) {
			return diags
		}
	}
	t.Fatalf("want an error containing %q, got:\n%s", want, FormatDiagnostics(l.Files(), diags, 0))
	return nil
}

const minimalSandbox = `
policy "p" {
}

sandbox "s" {
  policy = policy.p
}
`
