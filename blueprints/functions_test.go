package blueprints

import (
	"strings"
	"testing"
)

func TestFunctions(t *testing.T) {
	t.Parallel()
	cases := []struct{ expr, want string }{
		{`trimspace(file("files/motd.txt"))`, "Welcome to the sandbox."},
		{`templatefile("files/greeting.tmpl", { name = "x", items = ["1"] })`, "Hello x! [1]"},
		{`tostring(length("héllo"))`, "5"},
		{`tostring(length(["a", "b"]))`, "2"},
		{`join("-", formatlist("%s!", ["a", "b"]))`, "a!-b!"},
		{`jsonencode(merge({ a = 1 }, { b = 2 }))`, `{"a":1,"b":2}`},
		{`upper(regex_replace("a-b", "-", "_"))`, "A_B"},
		{`path.blueprint`, "testdata/valid"},
	}
	for _, c := range cases {
		bp := mustLoad(t, minimalSandbox+"\nsandbox \"f\" {\n  policy = policy.p\n  environment = {\n    V = "+c.expr+"\n  }\n}\n", Options{})
		if got := bp.Sandbox("f").Environment["V"]; !strings.HasSuffix(got, c.want) {
			t.Errorf("%s = %q, want %q", c.expr, got, c.want)
		}
	}
}

func TestFunctionErrors(t *testing.T) {
	t.Parallel()
	for expr, want := range map[string]string{
		`env("HOME")`:         "only allowed in a variable's default",
		`indent(100000, "x")`: "indent takes 0 to 256 spaces",
		`length(setproduct(range(100), range(101)))`: "more than 10000 elements",
		`templatefile("files/greeting.tmpl", "x")`:   "vars must be an object",
		`templatefile("nope.tmpl", {})`:              "cannot read",
		`credential("A B")`:                          "is not valid",
		`templatefile("files/motd.txt", {})`:         "", // a template without interpolations is fine
	} {
		src := "locals {\n  x = " + expr + "\n}\n"
		if want == "" {
			mustLoad(t, src, Options{})
			continue
		}
		wantError(t, src, Options{}, want)
	}
}

func TestEnvOnlyInVariableDefaults(t *testing.T) {
	t.Parallel()
	bp := mustLoad(t, "variable \"r\" {\n  default = env(\"TEST_REGION\")\n}\n\nvariable \"d\" {\n  default = env(\"UNSET_X\", \"fallback\")\n}\n", Options{})
	got := map[string]string{}
	for _, v := range bp.Variables {
		got[v.Name] = string(v.Value)
	}
	if got["r"] != `"eu-west"` || got["d"] != `"fallback"` {
		t.Fatalf("env() in defaults gave %v", got)
	}
}
