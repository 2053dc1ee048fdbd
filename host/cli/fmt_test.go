package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const unformatted = "policy \"p\" {\nunknown_hosts=\"deny\"\n}\n"
const formatted = "policy \"p\" {\n  unknown_hosts = \"deny\"\n}\n"

func TestFmtCheckRepositoryBlueprints(t *testing.T) {
	t.Parallel()
	_, errOut, code := runBlueprintCLI(t, "fmt", "-check", "-recursive", "../../examples", "../../blueprints/presets")
	if code != 0 {
		t.Fatalf("repository blueprints are not formatted: exit %d\n%s", code, errOut)
	}
}

func TestFmtModes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "a.hcl")
	sub := filepath.Join(dir, "sub")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{file, filepath.Join(sub, "b.hcl")} {
		if err := os.WriteFile(f, []byte(unformatted), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	out, _, code := runBlueprintCLI(t, "fmt", "-check", dir)
	if code != 1 || !strings.Contains(out, file) || strings.Contains(out, "b.hcl") || read(file) != unformatted {
		t.Fatalf("-check: exit %d, out %q (must list a.hcl only, without writing)", code, out)
	}
	out, _, code = runBlueprintCLI(t, "fmt", "-diff", file)
	if code != 0 || !strings.Contains(out, "-unknown_hosts=\"deny\"\n+  unknown_hosts = \"deny\"") || read(file) != unformatted {
		t.Fatalf("-diff: exit %d, out %q", code, out)
	}
	if _, errOut, code := runBlueprintCLI(t, "fmt", "-recursive", dir); code != 0 {
		t.Fatalf("write: exit %d %s", code, errOut)
	}
	if read(file) != formatted || read(filepath.Join(sub, "b.hcl")) != formatted {
		t.Fatal("fmt did not write the formatted files")
	}
	if _, _, code := runBlueprintCLI(t, "fmt", "--check", "--recursive", dir); code != 0 {
		t.Fatal("formatted files still fail --check")
	}
}

func TestFmtRefusesBrokenSyntax(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "broken.hcl")
	if err := os.WriteFile(file, []byte("policy \"p\" {\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := runBlueprintCLI(t, "fmt", file)
	if code != 1 || !strings.Contains(errOut, file+":1:12: error: Unclosed configuration block") {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
}

func TestUnifiedDiff(t *testing.T) {
	t.Parallel()
	a := "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n"
	b := "1\n2\nthree\n4\n5\n6\n7\n8\n9\n10\neleven\n12\n"
	got := unifiedDiff("f", a, b)
	want := "--- f\n+++ f (formatted)\n@@ -1,6 +1,6 @@\n 1\n 2\n-3\n+three\n 4\n 5\n 6\n@@ -8,5 +8,5 @@\n 8\n 9\n 10\n-11\n+eleven\n 12\n"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}
