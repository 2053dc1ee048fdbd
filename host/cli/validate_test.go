package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runCLI runs the real command tree and returns stdout, stderr and the
// exit code Main would return.
func runBlueprintCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	root := NewRoot("nemoclave")
	var stdout, stderr bytes.Buffer
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	root.SetArgs(append([]string{"--home", t.TempDir()}, args...))
	err := root.ExecuteContext(context.Background())
	code := 0
	if err != nil {
		var ee *ExitError
		if errors.As(err, &ee) {
			code = ee.Code
		} else {
			code = 1
			stderr.WriteString(err.Error())
		}
	}
	return stdout.String(), stderr.String(), code
}

func writeBlueprint(t *testing.T, src string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "blueprint.hcl")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

const quickstart = "../../examples/quickstart/blueprint.hcl"

func TestValidateQuickstart(t *testing.T) {
	t.Parallel()
	out, errOut, code := runBlueprintCLI(t, "validate", quickstart)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	if !strings.Contains(out, "valid") {
		t.Errorf("stdout %q", out)
	}
}

const cliBase = `
policy "p" {
  unknown_hosts = "deny"
}

sandbox "s" {
  policy = policy.p
}
`

// TestValidateDiagnostics is the acceptance list: each broken blueprint
// exits 1 with a diagnostic that names file:line:col, quotes the source
// line and explains the problem.
func TestValidateDiagnostics(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		src     string
		line    string // "line:col" of the diagnostic
		snippet string // source text shown in the snippet
		detail  string
	}{
		{"misspelt attribute", `
plugin "llm" "nim" {
  source = "builtin/llm-openai"
  config {
    basee_url = "https://integrate.api.nvidia.com/v1"
  }
}
` + cliBase, "5:5", `basee_url = "https://integrate.api.nvidia.com/v1"`, `Did you mean "base_url"?`},
		{"unknown reference", cliBase + `
agent "a" {
  sandbox = sandbox.assistant
  command = ["nemoclave", "agent"]
}
`, "11:13", "sandbox = sandbox.assistant", `There is no sandbox "assistant"`},
		{"cycle in locals", `
locals {
  a = local.b
  b = "${local.a}!"
}
` + cliBase, "3:7", "a = local.b", "Cycle in local values"},
		{"type error", `
variable "pids" {
  type    = number
  default = "many"
}
` + cliBase, "4:13", `default = "many"`, "var.pids must be number"},
		{"credential outside plugin config", `
sandbox "t" {
  policy = policy.p
  environment = {
    OPENAI_API_KEY = credential("OPENAI_API_KEY")
  }
}
` + cliBase, "4:17", `OPENAI_API_KEY = credential("OPENAI_API_KEY")`, "credential() not allowed here"},
		{"unknown preset", `
policy "q" {
  presets = ["pypi", "pipy"]
}
` + cliBase, "3:13", `presets = ["pypi", "pipy"]`, `There is no preset "pipy" (did you mean "pypi"?)`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			path := writeBlueprint(t, c.src)
			_, errOut, code := runBlueprintCLI(t, "validate", path)
			if code != 1 {
				t.Fatalf("exit %d, want 1\n%s", code, errOut)
			}
			for _, want := range []string{path + ":" + c.line + ": error: ", c.snippet, c.detail} {
				if !strings.Contains(errOut, want) {
					t.Errorf("diagnostics lack %q:\n%s", want, errOut)
				}
			}
		})
	}
}

func TestValidateVariables(t *testing.T) {
	t.Parallel()
	path := writeBlueprint(t, `
variable "pids" {
  type = number
}
`+cliBase)
	if _, errOut, code := runBlueprintCLI(t, "validate", path); code != 1 || !strings.Contains(errOut, "No value for required variable") {
		t.Fatalf("missing variable: exit %d\n%s", code, errOut)
	}
	if _, errOut, code := runBlueprintCLI(t, "validate", "-var", "pids=5", path); code != 0 {
		t.Fatalf("-var (single dash): exit %d\n%s", code, errOut)
	}
	varFile := filepath.Join(t.TempDir(), "v.tfvars")
	if err := os.WriteFile(varFile, []byte("pids = 7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := runBlueprintCLI(t, "validate", "--var-file", varFile, path); code != 0 {
		t.Fatalf("--var-file: exit %d\n%s", code, errOut)
	}
	if _, errOut, code := runBlueprintCLI(t, "validate", "--var", "pids", path); code != 1 || !strings.Contains(errOut, "name=value") {
		t.Fatalf("bad --var: exit %d\n%s", code, errOut)
	}
}

func TestValidateJSON(t *testing.T) {
	t.Parallel()
	path := writeBlueprint(t, "policy \"p\" {\n  unknown_hosts = \"maybe\"\n}\n")
	out, _, code := runBlueprintCLI(t, "validate", "-o", "json", path)
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	var res struct {
		Valid       bool
		Diagnostics []jsonDiagnostic
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if res.Valid || len(res.Diagnostics) != 1 {
		t.Fatalf("%+v", res)
	}
	d := res.Diagnostics[0]
	if d.Severity != "error" || d.Range == nil || d.Range.Filename != path || d.Range.Start.Line != 2 || d.Range.Start.Column != 19 || d.Snippet != `  unknown_hosts = "maybe"` {
		t.Fatalf("%+v %+v", d, d.Range)
	}
	out, _, code = runBlueprintCLI(t, "validate", "-o", "json", quickstart)
	if code != 0 || !strings.Contains(out, `"valid": true`) {
		t.Fatalf("quickstart: exit %d\n%s", code, out)
	}
}
