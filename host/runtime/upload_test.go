package runtime

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nemoclave/nemoclave/blueprints"
)

// TestCheckUploadPlugins: an uploaded blueprint's plugins may be given
// only paths inside the upload (pluginAccess shows a confined plugin every
// absolute path its config names), never run unconfined, and never run an
// MCP server without a sandbox.
func TestCheckUploadPlugins(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "workspace"), 0o755); err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	plug := func(source, kind string, cfg map[string]any) *blueprints.Plugin {
		b, err := json.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return &blueprints.Plugin{Kind: kind, Name: "x", Address: "plugin." + kind + ".x", Source: source, SourceType: blueprints.SourceBuiltin, Config: b}
	}
	for _, tc := range []struct {
		name string
		p    *blueprints.Plugin
		want string
	}{
		{"inside", plug("builtin/tools-files", "tools", map[string]any{"root": filepath.Join(root, "workspace"), "workspace_path": "/workspace"}), ""},
		{"cassette inside", plug("builtin/llm-replay", "llm", map[string]any{"cassette": filepath.Join(root, "cassette.json")}), ""},
		{"host dir", plug("builtin/tools-files", "tools", map[string]any{"root": "/etc"}), "names /etc, outside the upload"},
		{"home", plug("builtin/memory-sqlite", "memory", map[string]any{"path": filepath.Join(outside, "mem.db")}), "outside the upload"},
		{"link out", plug("builtin/tools-files", "tools", map[string]any{"root": filepath.Join(root, "link")}), "outside the upload"},
		{"unconfined", func() *blueprints.Plugin {
			p := plug("builtin/llm-replay", "llm", nil)
			p.Unconfined = true
			return p
		}(), "confine = false is refused"},
		{"mcp none", plug("builtin/tools-mcp", "tools", map[string]any{"command": []string{"sh"}, "sandbox": "none"}), `sandbox = "none"`},
	} {
		err := checkUploadPlugins(&blueprints.Blueprint{Plugins: []*blueprints.Plugin{tc.p}}, root)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
}
