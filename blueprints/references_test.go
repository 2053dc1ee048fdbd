package blueprints

import "testing"

func TestReferencesAreCheckedStatically(t *testing.T) {
	t.Parallel()
	base := `
variable "v" {
  default = "x"
}

plugin "tools" "files" {
  source = "builtin/tools-files"
}

policy "p" {
}

sandbox "s" {
  policy = policy.p
}

agent "a" {
  sandbox = sandbox.s
  command = ["x"]
}
`
	cases := map[string]string{
		"var.w":                     `There is no variable "w"`,
		"local.nope":                "There is no local.nope",
		"plugin.tool.files":         `"tool" is not a plugin kind (did you mean "tools"?)`,
		"plugin.tools.file":         `There is no plugin "tools" "file" (did you mean "files"?)`,
		"policy.q":                  `There is no policy "q"`,
		"sandbox.t":                 `There is no sandbox "t"`,
		"agent.b":                   `There is no agent "b"`,
		"vars.v":                    `There is nothing called "vars" in a blueprint (did you mean "var"?)`,
		"var":                       "must be followed by a name",
		`[for x in [1] : var.nope]`: `There is no variable "nope"`,
	}
	for expr, want := range cases {
		wantError(t, base+"\nlocals {\n  x = "+expr+"\n}\n", Options{}, want)
	}
	// Iterator names in for expressions are not references.
	mustLoad(t, base+"\nlocals {\n  x = [for p in [\"a\"] : upper(p)]\n  y = agent.a.name\n  z = plugin.tools.files.kind\n}\n", Options{})
}

func TestSuggest(t *testing.T) {
	t.Parallel()
	if got := suggest("sandboxs", []string{"sandbox", "agent"}); got != ` (did you mean "sandbox"?)` {
		t.Errorf("got %q", got)
	}
	if got := suggest("zzzzzz", []string{"sandbox"}); got != "" {
		t.Errorf("far names must not be suggested, got %q", got)
	}
}

func TestWholeKindReference(t *testing.T) {
	t.Parallel()
	bp := mustLoad(t, minimalSandbox+`
plugin "tools" "a" {
  source = "builtin/tools-files"
}

plugin "tools" "b" {
  source = "builtin/tools-http"
}

agent "x" {
  sandbox = sandbox.s
  command = ["x"]
  tools   = values(plugin.tools)
}
`, Options{})
	if got := bp.Agent("x").Tools; len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Fatalf("tools = %v", got)
	}
}
