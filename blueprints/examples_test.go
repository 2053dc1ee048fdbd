package blueprints

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func globT(t *testing.T, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func readT(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestExamplesValidate evaluates every blueprint under examples/ with the
// builtin fallback schemas, as `nemoclave validate` does, and requires
// them to be formatted.
func TestExamplesValidate(t *testing.T) {
	t.Parallel()
	files := globT(t, "../examples/*/*.hcl")
	files = append(files, globT(t, "../examples/*/*.hcl.json")...)
	dirs := map[string]bool{}
	for _, f := range files {
		dirs[filepath.Dir(f)] = true
	}
	if !dirs["../examples/quickstart"] {
		t.Fatal("examples/quickstart/blueprint.hcl is missing")
	}
	for dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			t.Parallel()
			l := NewLoader(Options{LookupEnv: func(string) (string, bool) { return "", false }})
			bp, diags := l.Load(context.Background(), dir)
			if diags.HasErrors() {
				t.Fatalf("%s does not validate:\n%s", dir, FormatDiagnostics(l.Files(), diags, 0))
			}
			if filepath.Base(dir) == "quickstart" && (len(bp.Agents) == 0 || len(bp.Sandboxes) == 0) {
				t.Errorf("%s declares no agent or sandbox", dir)
			}
			for _, s := range bp.Sandboxes {
				if err := s.Policy.Validate(); err != nil {
					t.Errorf("%s: sandbox %s: %v", dir, s.Name, err)
				}
			}
		})
	}
	for _, f := range globT(t, "../examples/*/*.hcl") {
		src := readT(t, f)
		if got, _ := Format(f, src); string(got) != string(src) {
			t.Errorf("%s is not formatted (nemoclave fmt %s)", f, f)
		}
	}
}

func readFileQuiet(path string) ([]byte, error) { return os.ReadFile(path) }
