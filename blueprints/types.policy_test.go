package blueprints

import (
	"testing"

	"github.com/nemoclave/nemoclave/policy"
)

func TestPolicyDefaultsAreClosed(t *testing.T) {
	t.Parallel()
	bp := mustLoad(t, minimalSandbox, Options{})
	p := bp.Sandbox("s").Policy
	if p.UnknownHosts != policy.UnknownDeny {
		t.Errorf("unknown_hosts defaults to %q, want deny", p.UnknownHosts)
	}
	if len(p.Network) != 0 {
		t.Errorf("a policy without network blocks allows %v", p.Hosts())
	}
	if len(p.Filesystem.ReadWrite) != len(DefaultReadWrite) || p.Landlock.BestEffort {
		t.Errorf("unexpected defaults: %+v", p)
	}
}

func TestPresetsMergeByKey(t *testing.T) {
	t.Parallel()
	bp := mustLoad(t, `
policy "p" {
  presets = ["github", "pypi"]
  network "extra" {
    endpoint {
      host = "api.github.com"
    }
    endpoint {
      host = "example.com"
      port = 8443
    }
  }
}
`, Options{})
	p := bp.Policy("p")
	if got := []string{p.Network[0].Source, p.Network[1].Source, p.Network[2].Source}; got[0] != "preset:github" || got[1] != "preset:pypi" || got[2] != "blueprint" {
		t.Fatalf("rule sources %v", got)
	}
	want := []string{"*.githubusercontent.com", "api.github.com", "codeload.github.com", "example.com", "files.pythonhosted.org", "github.com", "pypi.org"}
	got := p.Hosts()
	if len(got) != len(want) {
		t.Fatalf("hosts %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("hosts %v, want %v", got, want)
		}
	}
}

func TestPresetConflictsAreDiagnostics(t *testing.T) {
	t.Parallel()
	wantError(t, `
policy "p" {
  presets = ["openai"]
  network "mine" {
    endpoint {
      host          = "api.openai.com"
      allow_private = true
    }
  }
}
`, Options{}, "Conflicting endpoint rules")
	wantError(t, `
policy "p" {
  presets = ["pypi", "pypi"]
}
`, Options{}, "listed twice")
}

func TestNullRequiredValues(t *testing.T) {
	t.Parallel()
	wantError(t, "policy \"p\" {\n  network \"n\" {\n    endpoint {\n      host = null\n    }\n  }\n}\n", Options{}, "host is null")
	wantError(t, minimalSandbox+"agent \"a\" {\n  sandbox = sandbox.s\n  command = null\n}\n", Options{}, "command is null")
	wantError(t, "plugin \"llm\" \"l\" {\n  source = \"builtin/llm-openai\"\n}\n\ninference {\n  model \"m\" {\n    provider = plugin.llm.l\n    model    = null\n  }\n}\n", Options{}, "model is null")
}
