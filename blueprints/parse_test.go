package blueprints

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadPaths(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	for path, want := range map[string]string{
		filepath.Join(dir, "missing.hcl"): "Cannot read blueprint",
		filepath.Join(dir, "notes.txt"):   "Not a blueprint file",
		empty:                             "Empty blueprint directory",
	} {
		l := NewLoader(Options{})
		bp, diags := l.Load(context.Background(), path)
		if bp != nil || !strings.Contains(diags.Error(), want) {
			t.Errorf("%s: got %v, want %q", path, diags, want)
		}
	}
}

func TestDirectoryIsOneBlueprint(t *testing.T) {
	t.Parallel()
	l := NewLoader(Options{})
	bp, diags := l.Load(context.Background(), "testdata/valid/ok_dir")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if len(bp.Files) != 2 || bp.Sandbox("split") == nil || bp.Sandbox("split").Policy.UnknownHosts != "ask" {
		t.Fatalf("files %v, sandbox %+v", bp.Files, bp.Sandbox("split"))
	}
}

func TestWriteDiagnosticsLocation(t *testing.T) {
	t.Parallel()
	_, diags, l := loadString(t, "policy \"p\" {\n  unknown_hosts = \"maybe\"\n}\n", Options{})
	out := FormatDiagnostics(l.Files(), diags, 0)
	for _, want := range []string{"test.hcl:2:19: error: Invalid value for unknown_hosts", `2:   unknown_hosts = "maybe"`} {
		if !strings.Contains(out, want) {
			t.Errorf("rendering lacks %q:\n%s", want, out)
		}
	}
}
