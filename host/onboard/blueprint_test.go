package onboard

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nemoclave/nemoclave/blueprints"
)

// Every provider's starter blueprint must validate: a newcomer's first
// file cannot be broken.
func TestStarterBlueprintsValidate(t *testing.T) {
	t.Parallel()
	for _, p := range Providers {
		t.Run(p.ID, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			c := Choices{Provider: p, Model: p.DefaultModel, Sandbox: "assistant", Presets: []string{"pypi", "github"}, Cassette: filepath.Join(dir, "c.json")}
			src, err := Blueprint(c, dir)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "blueprint.hcl")
			if err := os.WriteFile(path, src, 0o644); err != nil {
				t.Fatal(err)
			}
			l := blueprints.NewLoader(blueprints.Options{LookupEnv: func(string) (string, bool) { return "", false }})
			bp, diags := l.Load(context.Background(), path)
			if diags.HasErrors() {
				t.Fatalf("%s\n%s", blueprints.FormatDiagnostics(l.Files(), diags, 100), src)
			}
			if got := bp.Sandbox("assistant").Policy.Presets; strings.Join(got, ",") != "pypi,github" {
				t.Fatalf("presets = %v", got)
			}
			if p.Credential != "" && !strings.Contains(string(src), `credential("`+p.Credential+`")`) {
				t.Fatalf("key not referenced by credential():\n%s", src)
			}
			formatted, fdiags := blueprints.Format(path, src)
			if fdiags.HasErrors() || string(formatted) != string(src) {
				t.Fatalf("starter blueprint is not canonically formatted:\n%s", src)
			}
		})
	}
}

func TestChoicesValidate(t *testing.T) {
	t.Parallel()
	p, _ := Lookup("nvidia")
	for _, c := range []Choices{
		{Provider: p, Model: "m", Sandbox: "Bad Name"},
		{Provider: p, Sandbox: "ok"},
		{Provider: Providers[len(Providers)-1], Model: "replay", Sandbox: "ok"},
	} {
		if c.Validate() == nil {
			t.Errorf("accepted %+v", c)
		}
	}
	if _, err := Lookup("nope"); err == nil || !strings.Contains(err.Error(), "nvidia") {
		t.Fatalf("lookup error: %v", err)
	}
}
