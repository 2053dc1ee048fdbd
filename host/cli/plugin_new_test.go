package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPluginNewBuildsAndPasses is issue 15's acceptance, for every kind:
// the scaffold, with its replace pointing at this checkout's sdk/, passes
// its own conformance test with GOWORK=off.
func TestPluginNewBuildsAndPasses(t *testing.T) {
	sdk, err := filepath.Abs("../../sdk")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range scaffoldKinds {
		t.Run(k.kind, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "p")
			out, err := runCLI(t, "plugin", "new", k.kind, dir, "--sdk", sdk)
			if err != nil {
				t.Fatalf("plugin new: %v\n%s", err, out)
			}
			files := []string{"go.mod", "go.sum", "main.go", "main_test.go", "README.md"}
			if k.hash {
				files = append(files, "hash.go")
			}
			for _, f := range files {
				if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
					t.Errorf("scaffold lacks %s: %v", f, err)
				}
			}
			mod, _ := os.ReadFile(filepath.Join(dir, "go.mod"))
			if !strings.Contains(string(mod), "replace github.com/nemoclave/nemoclave/sdk => "+sdk) {
				t.Errorf("go.mod does not replace the SDK with %s:\n%s", sdk, mod)
			}
			main, _ := os.ReadFile(filepath.Join(dir, "main.go"))
			if !strings.Contains(string(main), `Name: "`+k.kind+`-p"`) {
				t.Errorf("main.go does not name the plugin %s-p:\n%s", k.kind, main)
			}
			cmd := exec.Command("go", "test", "-count=1", "./...")
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("GOWORK=off go test ./... in the %s scaffold: %v\n%s", k.kind, err, b)
			}
			vet := exec.Command("go", "vet", "./...")
			vet.Dir = dir
			vet.Env = cmd.Env
			if b, err := vet.CombinedOutput(); err != nil {
				t.Errorf("go vet in the %s scaffold: %v\n%s", k.kind, err, b)
			}
			if b, err := exec.Command("gofmt", "-l", dir).CombinedOutput(); err != nil || len(strings.TrimSpace(string(b))) > 0 {
				t.Errorf("scaffold is not gofmt-clean: %s %v", b, err)
			}
			if _, err := runCLI(t, "plugin", "new", k.kind, dir, "--sdk", sdk); err == nil || !strings.Contains(err.Error(), "not empty") {
				t.Errorf("plugin new over an existing module: %v", err)
			}
		})
	}
	if _, err := runCLI(t, "plugin", "new", "vectors", filepath.Join(t.TempDir(), "x")); err == nil || !strings.Contains(err.Error(), "llm, embeddings, retrieval, memory, tools, dataproc") {
		t.Errorf("plugin new of an unknown kind: %v", err)
	}
}

// TestPluginNewTemplatesMatchExample keeps the scaffold's dependency list
// equal to examples/tools-wordcount's, which `make test` builds with
// GOWORK=off: regenerate plugintmpl/go.sum.tmpl and the require block of
// go.mod.tmpl from it when the SDK's dependencies change.
func TestPluginNewTemplatesMatchExample(t *testing.T) {
	sum, _ := os.ReadFile("../../examples/tools-wordcount/go.sum")
	tmpl, _ := os.ReadFile("plugintmpl/go.sum.tmpl")
	if len(sum) == 0 || string(sum) != string(tmpl) {
		t.Error("host/cli/plugintmpl/go.sum.tmpl differs from examples/tools-wordcount/go.sum; copy it over")
	}
	mod, _ := os.ReadFile("../../examples/tools-wordcount/go.mod")
	mt, _ := os.ReadFile("plugintmpl/go.mod.tmpl")
	s := string(mod)
	i := strings.Index(s, "require (")
	j := strings.Index(s[i:], ")") + i + 1
	if i < 0 || !strings.Contains(string(mt), s[i:j]) {
		t.Error("host/cli/plugintmpl/go.mod.tmpl's indirect requirements differ from examples/tools-wordcount/go.mod; copy its require ( ... ) block over")
	}
}
