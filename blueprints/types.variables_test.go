package blueprints

import (
	"os"
	"path/filepath"
	"testing"
)

func TestVariablePrecedence(t *testing.T) {
	t.Parallel()
	src := `
variable "v" {
  type    = string
  default = "default"
}

variable "n" {
  type    = number
  default = 1
}

variable "l" {
  type    = list(string)
  default = []
}
`
	dir := t.TempDir()
	varFile := filepath.Join(dir, "x.tfvars")
	if err := os.WriteFile(varFile, []byte("v = \"file\"\nn = 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := func(k string) (string, bool) {
		v, ok := map[string]string{"NEMOCLAVE_VAR_v": "env", "NEMOCLAVE_VAR_n": "3"}[k]
		return v, ok
	}
	cases := []struct {
		name  string
		opts  Options
		wantV string
		wantN string
		wantL string
	}{
		{"default", Options{}, `"default"`, `1`, `[]`},
		{"env", Options{LookupEnv: env}, `"env"`, `3`, `[]`},
		{"var-file beats env", Options{LookupEnv: env, VarFiles: []string{varFile}}, `"file"`, `2`, `[]`},
		{"-var beats all", Options{LookupEnv: env, VarFiles: []string{varFile}, Vars: map[string]string{"v": "cli", "n": "4", "l": `["a", "b"]`}}, `"cli"`, `4`, `["a","b"]`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			bp := mustLoad(t, src, c.opts)
			got := map[string]string{}
			for _, v := range bp.Variables {
				got[v.Name] = string(v.Value)
			}
			if got["v"] != c.wantV || got["n"] != c.wantN || got["l"] != c.wantL {
				t.Errorf("got v=%s n=%s l=%s, want v=%s n=%s l=%s", got["v"], got["n"], got["l"], c.wantV, c.wantN, c.wantL)
			}
		})
	}
}

func TestVariableCommandLineErrors(t *testing.T) {
	t.Parallel()
	src := "variable \"n\" {\n  type = number\n  default = 1\n}\n"
	wantError(t, src, Options{Vars: map[string]string{"m": "1"}}, `declares no variable "m"`)
	wantError(t, src, Options{Vars: map[string]string{"n": "[1"}}, "not a valid HCL expression")
	wantError(t, src, Options{Vars: map[string]string{"n": "\"x\""}}, "var.n must be number")
	bp := mustLoad(t, "variable \"u\" {\n  default = 1\n}\n", Options{Vars: map[string]string{"u": "word"}})
	if string(bp.Variables[0].Value) != `"word"` {
		t.Errorf("untyped -var u=word gave %s, want the string", bp.Variables[0].Value)
	}
	wantError(t, src, Options{VarFiles: []string{"testdata/does-not-exist.tfvars"}}, "Check the -var-file path")
}

func TestSensitiveVariableIsRedacted(t *testing.T) {
	t.Parallel()
	bp := mustLoad(t, "variable \"s\" {\n  default = \"hunter2\"\n  sensitive = true\n}\n", Options{})
	if len(bp.Variables) != 1 || string(bp.Variables[0].Value) != `"(sensitive)"` {
		t.Fatalf("sensitive variable shown as %s", bp.Variables[0].Value)
	}
}
