package blueprints

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/nemoclave/nemoclave/sdk/schema"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// testSchemas is the builtin fallback plus test plugins that exercise
// nested blocks and plugin-side validation.
func testSchemas() *StaticSchemaSource {
	s := BuiltinSchemaSource()
	s.Schemas["./plugins/nested"] = &schema.Schema{Block: schema.Block{
		Attributes: []schema.Attribute{
			{Name: "name", Type: "string", Required: true},
			{Name: "secret", Type: "string", Sensitive: true},
			{Name: "token", Credential: true},
		},
		Blocks: []schema.NestedBlock{
			{Name: "retry", Nesting: schema.NestingSingle, Block: schema.Block{Attributes: []schema.Attribute{{Name: "max", Type: "number"}}}},
			{Name: "route", Nesting: schema.NestingList, Block: schema.Block{Attributes: []schema.Attribute{{Name: "path", Type: "string"}}}},
			{Name: "index", Nesting: schema.NestingMap, Block: schema.Block{Attributes: []schema.Attribute{{Name: "dims", Type: "number"}}}},
		},
	}}
	// relay wires to another llm plugin, for the wiring tests: no builtin
	// plugin takes a plugin reference of its own kind.
	s.Schemas["./plugins/relay"] = &schema.Schema{Block: schema.Block{
		Attributes: []schema.Attribute{
			{Name: "cassette", Type: "string"}, {Name: "mode", Type: "string"},
			{Name: "upstream", PluginKind: "llm"},
		},
	}}
	s.Validate = func(kind, source string, config json.RawMessage) []ConfigDiagnostic {
		out := playBuiltinRules(source, config)
		if source != "./plugins/nested" {
			return out
		}
		var c struct {
			Name  string
			Retry *struct{ Max float64 }
			Route []struct{ Path string }
			Index map[string]struct{ Dims float64 }
		}
		_ = json.Unmarshal(config, &c)
		if c.Name == "reject" {
			out = append(out, ConfigDiagnostic{Severity: hcl.DiagError, Summary: "Name rejected", Detail: "The plugin refuses the name \"reject\".", Path: []string{"name"}})
		}
		if c.Retry != nil && c.Retry.Max > 10 {
			out = append(out, ConfigDiagnostic{Severity: hcl.DiagError, Summary: "Too many retries", Detail: "max must be at most 10.", Path: []string{"retry", "max"}})
		}
		for i, r := range c.Route {
			if !strings.HasPrefix(r.Path, "/") {
				out = append(out, ConfigDiagnostic{Severity: hcl.DiagError, Summary: "Relative route", Detail: "route paths start with /.", Path: []string{"route", itoa(i), "path"}})
			}
		}
		for k, v := range c.Index {
			if v.Dims == 0 {
				out = append(out, ConfigDiagnostic{Severity: hcl.DiagWarning, Summary: "Empty index", Detail: "dims is 0.", Path: []string{"index", k}})
			}
		}
		return out
	}
	return s
}

// playBuiltinRules plays two builtin plugins' ValidateConfig rules that
// a schema cannot express, so the golden cases show how a plugin's verdict
// is located; the real rules live in the plugins.
func playBuiltinRules(source string, config json.RawMessage) []ConfigDiagnostic {
	var c map[string]any
	if err := json.Unmarshal(config, &c); err != nil {
		return nil
	}
	switch source {
	case "builtin/llm-replay":
		if mode, _ := c["mode"].(string); mode != "replay" && mode != "record" {
			return []ConfigDiagnostic{{Severity: hcl.DiagError, Summary: "Invalid replay mode", Detail: fmt.Sprintf("mode = %q: use \"replay\" or \"record\".", mode), Path: []string{"mode"}}}
		}
	case "builtin/embeddings-hash":
		if dims, _ := c["dimensions"].(float64); dims < 1 || dims > 8192 {
			return []ConfigDiagnostic{{Severity: hcl.DiagError, Summary: "Invalid dimensions", Detail: "dimensions must be between 1 and 8192.", Path: []string{"dimensions"}}}
		}
	}
	return nil
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// testEnv is the environment the golden tests see.
func testEnv(name string) (string, bool) {
	v, ok := map[string]string{
		"NEMOCLAVE_VAR_from_env": "from-environment",
		"TEST_REGION":            "eu-west",
	}[name]
	return v, ok
}

// TestGolden evaluates every case under testdata/<area>/: a *.hcl or
// *.hcl.json file, or a directory (a multi-file blueprint). A sibling
// <case>.tfvars is passed as a -var-file. The golden file <case>.golden
// holds the rendered diagnostics and, when there are no errors, the
// evaluated blueprint as JSON. Run with -update to rewrite them.
func TestGolden(t *testing.T) {
	areas, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, area := range areas {
		if !area.IsDir() {
			continue
		}
		dir := filepath.Join("testdata", area.Name())
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, ent := range entries {
			name := ent.Name()
			if !strings.HasPrefix(name, "ok_") && !strings.HasPrefix(name, "err_") || !ent.IsDir() && !IsBlueprintFile(name) {
				continue
			}
			n++
			caseName := strings.TrimSuffix(strings.TrimSuffix(name, ".json"), ".hcl")
			path := filepath.Join(dir, name)
			t.Run(area.Name()+"/"+caseName, func(t *testing.T) {
				t.Parallel()
				got := evaluateCase(t, dir, caseName, path)
				golden := filepath.Join(dir, caseName+".golden")
				if *update {
					if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run go test ./blueprints -run TestGolden -update)", err)
				}
				if got != string(want) {
					t.Errorf("%s differs from %s (rerun with -update if intended):\n--- got\n%s", path, golden, got)
				}
				expectErr := strings.HasPrefix(caseName, "err_")
				if hasErr := strings.Contains(got, ": error: "); hasErr != expectErr {
					t.Errorf("case %s: errors reported = %v, but err_ prefix says %v", caseName, hasErr, expectErr)
				}
			})
		}
	}
	if n == 0 {
		t.Fatal("no golden cases found")
	}
}

// goldenHost is the daemon the golden cases are checked against: every
// credential exists except names starting with MISSING_, and only the
// cases under testdata/host/ see a daemon with no cluster configured.
type goldenHost struct{ noCluster bool }

func (h goldenHost) CheckDriver(name string) error {
	if name == DriverKubernetes && h.noCluster {
		return errors.New("this daemon has no Kubernetes cluster configured; set NEMOCLAVE_KUBECONFIG")
	}
	return nil
}

func (goldenHost) CheckCredential(_ context.Context, name string) error {
	if strings.HasPrefix(name, "MISSING_") {
		return fmt.Errorf("%q is in none of [file env]; add it with: nemoclave provider add %s", name, name)
	}
	return nil
}

func evaluateCase(t *testing.T, dir, caseName, path string) string {
	host := goldenHost{noCluster: filepath.Base(dir) == "host"}
	opts := Options{Schemas: testSchemas(), LookupEnv: testEnv, PresetDirs: []string{"testdata/presets.d"}, Host: host}
	if _, err := os.Stat(filepath.Join(dir, caseName+".tfvars")); err == nil {
		opts.VarFiles = []string{filepath.Join(dir, caseName+".tfvars")}
	}
	l := NewLoader(opts)
	bp, diags := l.Load(context.Background(), path)
	var b strings.Builder
	b.WriteString(FormatDiagnostics(l.Files(), diags, 0))
	if !diags.HasErrors() {
		if bp == nil {
			t.Fatal("no blueprint and no errors")
		}
		js, err := json.MarshalIndent(bp, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("=== blueprint\n")
		b.Write(js)
		b.WriteString("\n")
	}
	abs, _ := filepath.Abs(".")
	cwd, _ := os.Getwd()
	out := strings.ReplaceAll(b.String(), abs, "<pkg>")
	return strings.ReplaceAll(out, cwd, "<pkg>")
}
