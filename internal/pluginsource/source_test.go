package pluginsource

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		typ  Type
		want string // canonical form
	}{
		{"builtin/llm-openai", Builtin, "builtin/llm-openai"},
		{"builtin/tools-mcp", Builtin, "builtin/tools-mcp"},
		{"example.com/acme/wordcount", Installed, "example.com/acme/wordcount"},
		{"example.com/acme/wordcount@0.1.0", Installed, "example.com/acme/wordcount@0.1.0"},
		{"registry.example.co.uk/my-org/plugin_x", Installed, "registry.example.co.uk/my-org/plugin_x"},
		{"./bin/nemoclave-plugin-tools-x", Path, "./bin/nemoclave-plugin-tools-x"},
		{"../x", Path, "../x"},
		{"/opt/x", Path, "/opt/x"},
		{"mcp", MCP, "mcp"},
	} {
		s, err := Parse(tc.in, true)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if s.Type != tc.typ || s.String() != tc.want {
			t.Errorf("Parse(%q) = %+v (%s), want %s %s", tc.in, s, s, tc.typ, tc.want)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"", "empty plugin source"},
		{"wordcount", "bare name is ambiguous"},
		{"acme/wordcount", "three parts"},
		{"a/b/c/d", "three parts"},
		{"localhost/acme/x", "not a host name"},
		{"Example.com/acme/x", "not a host name"},
		{"example.com/Acme/x", "lower-case"},
		{"example.com/acme/x@v1.0", "semantic version"},
		{"example.com/acme/x@latest", "semantic version"},
		{"builtin/llm", "builtin/<kind>-<name>"},
		{"builtin/llm-x/y", "builtin/<kind>-<name>"},
		{"builtin/../x", "builtin/<kind>-<name>"},
	} {
		_, err := Parse(tc.in, true)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want an error containing %q", tc.in, err, tc.want)
		}
	}
	if _, err := Parse("mcp", false); err == nil {
		t.Error(`"mcp" accepted where only launchable sources are`)
	}
	s, _ := Parse("builtin/embeddings-hash", false)
	if s.Kind() != "embeddings" {
		t.Errorf("Kind() = %q", s.Kind())
	}
}

func TestVersions(t *testing.T) {
	for _, ok := range []string{"0.1.0", "1.2.3-beta.1", "10.0.0+build.5"} {
		if _, err := ParseVersion(ok); err != nil {
			t.Errorf("ParseVersion(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "v1.0.0", "1.0 ", "x"} {
		if _, err := ParseVersion(bad); err == nil {
			t.Errorf("ParseVersion(%q) accepted", bad)
		}
	}
	c, err := ParseConstraint(">= 0.2, < 1.0")
	if err != nil {
		t.Fatal(err)
	}
	v, _ := ParseVersion("0.1.0")
	if c.Check(v) {
		t.Error("0.1.0 satisfies >= 0.2")
	}
	if _, err := ParseConstraint("about 1"); err == nil || !strings.Contains(err.Error(), ">= 1.2, < 2.0") {
		t.Errorf("bad constraint: %v", err)
	}
}
