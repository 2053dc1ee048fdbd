package blueprints

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/nemoclave/nemoclave/policy"
)

// requiredPresets are the presets the platform promises (docs/policies.md).
var requiredPresets = []string{"pypi", "npm", "github", "huggingface", "docker", "telegram", "slack",
	"discord", "jira", "outlook", "nvidia", "openai", "anthropic", "ollama-local"}

func TestBuiltinPresets(t *testing.T) {
	t.Parallel()
	l := NewLoader(Options{})
	presets, diags := l.Presets(nil)
	if diags.HasErrors() {
		t.Fatalf("builtin presets do not load:\n%s", FormatDiagnostics(l.Files(), diags, 0))
	}
	byName := map[string]*Preset{}
	for _, p := range presets {
		byName[p.Name] = p
	}
	for _, name := range requiredPresets {
		p := byName[name]
		if p == nil {
			t.Errorf("missing builtin preset %q", name)
			continue
		}
		if p.Description == "" || len(p.Network) == 0 {
			t.Errorf("preset %q has no description or no rules", name)
		}
		pol := &policy.Policy{Name: "t", UnknownHosts: policy.UnknownDeny, Filesystem: policy.Filesystem{ReadOnly: []string{"/usr"}}, Network: p.Network}
		if err := pol.Validate(); err != nil {
			t.Errorf("preset %q does not validate: %v", name, err)
		}
		// The file's header comment promises exactly which hosts it allows;
		// hold it to that.
		src, err := builtinPresets.ReadFile("presets/" + name + ".hcl")
		if err != nil {
			t.Fatal(err)
		}
		documented := regexp.MustCompile(`(?m)^#   (\S+)$`).FindAllStringSubmatch(string(src), -1)
		var docHosts []string
		for _, m := range documented {
			docHosts = append(docHosts, m[1])
		}
		if got, want := strings.Join(pol.Hosts(), " "), strings.Join(sortedCopy(docHosts), " "); got != want {
			t.Errorf("preset %q allows %q but its header documents %q", name, got, want)
		}
	}
}

// TestPresetsAreDocumented keeps docs/policies.md in step with the
// embedded presets.
func TestPresetsAreDocumented(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../docs/policies.md")
	if err != nil {
		t.Fatal(err)
	}
	l := NewLoader(Options{})
	presets, _ := l.Presets(nil)
	for _, p := range presets {
		row := "| `" + p.Name + "` |"
		if !strings.Contains(string(doc), row) {
			t.Errorf("docs/policies.md has no row for preset %q", p.Name)
			continue
		}
		for _, h := range pHosts(p) {
			if !strings.Contains(string(doc), "`"+h+"`") {
				t.Errorf("docs/policies.md does not list host %s of preset %q", h, p.Name)
			}
		}
	}
}

func pHosts(p *Preset) []string {
	var out []string
	for _, r := range p.Network {
		for _, e := range r.Endpoints {
			out = append(out, e.Host)
		}
	}
	return out
}

func TestUserPresets(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, src string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("corp.hcl", "preset \"corp\" {\n  description = \"c\"\n  network \"corp\" {\n    endpoint {\n      host = \"git.corp.example\"\n    }\n  }\n}\n")
	write("shadow.hcl", "preset \"pypi\" {\n  description = \"mine\"\n}\n")
	l := NewLoader(Options{})
	presets, diags := l.Presets([]string{dir})
	found := false
	for _, p := range presets {
		found = found || p.Name == "corp" && !p.Builtin
	}
	if !found {
		t.Error("user preset corp not loaded")
	}
	if !diags.HasErrors() || !strings.Contains(diags.Error(), "already defined by a builtin preset") {
		t.Errorf("a user preset shadowing a builtin must be a diagnostic, got %v", diags)
	}
}

func sortedCopy(xs []string) []string {
	out := append([]string{}, xs...)
	sort.Strings(out)
	return out
}
