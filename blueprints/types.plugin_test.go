package blueprints

import (
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

func TestPluginSourceTypes(t *testing.T) {
	t.Parallel()
	bp := mustLoad(t, `
plugin "tools" "a" {
  source = "builtin/tools-files"
}

plugin "tools" "b" {
  source  = "mcp"
  command = ["srv"]
}

plugin "tools" "c" {
  source = "./plugins/nested"
  config {
    name = "c"
  }
}

plugin "tools" "d" {
  source = "example.com/org/tools-d"
}
`, Options{Schemas: testSchemas()})
	want := map[string]string{"a": SourceBuiltin, "b": SourceMCP, "c": SourcePath, "d": SourceInstalled}
	for name, st := range want {
		p := bp.Plugin("tools", name)
		if p == nil || p.SourceType != st {
			t.Errorf("plugin %s: %+v, want source type %s", name, p, st)
		}
	}
	if c := bp.Plugin("tools", "c"); !strings.HasSuffix(c.Path, "testdata/valid/plugins/nested") {
		t.Errorf("path source resolved to %q", c.Path)
	}
}

func TestPluginDiagnosticPathsMapToRanges(t *testing.T) {
	t.Parallel()
	_, diags, _ := loadString(t, `
plugin "llm" "n" {
  source = "./plugins/nested"
  config {
    name = "reject"
    route {
      path = "/ok"
    }
    route {
      path = "bad"
    }
  }
}
`, Options{})
	lines := map[string]int{}
	for _, d := range diags {
		lines[d.Summary] = d.Subject.Start.Line
	}
	if lines["Name rejected"] != 5 || lines["Relative route"] != 10 {
		t.Fatalf("diagnostics not at the attributes they name: %v", lines)
	}
}

func TestWiringAndCredentialsAreRecorded(t *testing.T) {
	t.Parallel()
	bp := mustLoad(t, `
plugin "embeddings" "e" {
  source = "builtin/embeddings-hash"
}

plugin "retrieval" "r" {
  source = "builtin/retrieval-sqlite"
  config {
    embeddings = plugin.embeddings.e
  }
}
`, Options{})
	r := bp.Plugin("retrieval", "r")
	if len(r.Wiring) != 1 || r.Wiring[0].Kind != "embeddings" || r.Wiring[0].Name != "e" {
		t.Fatalf("wiring %+v", r.Wiring)
	}
}

func TestMCPEmptyCommand(t *testing.T) {
	t.Parallel()
	wantError(t, "plugin \"tools\" \"m\" {\n  source  = \"mcp\"\n  command = []\n}\n", Options{}, "command needs at least the program to run")
}

func TestPluginTimeout(t *testing.T) {
	t.Parallel()
	bp := mustLoad(t, `
plugin "embeddings" "e" {
  source  = "builtin/embeddings-hash"
  timeout = "90s"
}
`, Options{})
	if len(bp.Plugins) != 1 || bp.Plugins[0].Timeout != "90s" {
		t.Fatalf("timeout not recorded: %+v", bp.Plugins)
	}
	wantError(t, `
plugin "embeddings" "e" {
  source  = "builtin/embeddings-hash"
  timeout = "soon"
}
`, Options{}, "positive duration")
}

// confine = false is recorded and warned about; anything else confines.
func TestPluginConfineFalse(t *testing.T) {
	t.Parallel()
	bp, diags, _ := loadString(t, `
plugin "embeddings" "e" {
  source  = "builtin/embeddings-hash"
  confine = false
}
`, Options{})
	if diags.HasErrors() || len(bp.Plugins) != 1 || !bp.Plugins[0].Unconfined {
		t.Fatalf("confine = false not recorded: %+v %v", bp, diags)
	}
	warned := false
	for _, d := range diags {
		if d.Severity == hcl.DiagWarning && d.Summary == "Plugin runs unconfined" && strings.Contains(d.Detail, "--allow-unconfined-plugins") {
			warned = true
		}
	}
	if !warned {
		t.Errorf("no warning for confine = false: %v", diags)
	}
	bp = mustLoad(t, `
plugin "embeddings" "e" {
  source  = "builtin/embeddings-hash"
  confine = true
}
`, Options{})
	if bp.Plugins[0].Unconfined {
		t.Error("confine = true opted the plugin out")
	}
	// A value that is not a bool is an error, never an opt-out.
	wantError(t, `
plugin "embeddings" "e" {
  source  = "builtin/embeddings-hash"
  confine = "no"
}
`, Options{}, "bool")
}
