package runtime

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/host/daemon"
	"github.com/nemoclave/nemoclave/sandbox"
)

// A plugin block's confine = false is refused by a daemon that does not
// allow unconfined plugins, and audited; a daemon that allows it starts
// the plugin unconfined, says so loudly in the run's steps, and audits it.
func TestPluginConfineFalse(t *testing.T) {
	t.Parallel()
	src := strings.Replace(withModel(oneAgent), `source = "builtin/llm-replay"`, "source = \"builtin/llm-replay\"\n  confine = false", 1)
	if !strings.Contains(src, "confine = false") {
		t.Fatal("test blueprint not rewritten")
	}
	path := writeBlueprint(t, src)
	binDir := confinedBinDir(t)
	for _, allow := range []bool{false, true} {
		t.Run(fmt.Sprintf("allow=%v", allow), func(t *testing.T) {
			home := t.TempDir()
			r, err := New(context.Background(), Options{
				Home: home, Drivers: map[string]sandbox.Driver{"local": newFakeDriver(0)}, Executable: "/bin/true", PluginBinDir: binDir,
				ConfinePlugins: true, AllowUnconfinedPlugins: allow,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close(context.Background())
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			var ev events
			err = r.Run(ctx, daemon.RunRequest{Path: path}, &ev)
			audit, _ := os.ReadFile(filepath.Join(home, "audit", "egress.jsonl"))
			if !allow {
				if err == nil || !strings.Contains(err.Error(), "--allow-unconfined-plugins") || !strings.Contains(err.Error(), "plugin.llm.replay") {
					t.Fatalf("confine = false was not refused with a way out: %v", err)
				}
				if !strings.Contains(string(audit), `"sandbox":"plugin.llm.replay","kind":"plugin"`) || !strings.Contains(string(audit), `"decision":"deny"`) {
					t.Errorf("the refusal is not audited:\n%s", audit)
				}
				return
			}
			if err != nil {
				t.Fatalf("run: %v\n%s", err, ev.String())
			}
			if !strings.Contains(ev.String(), "UNCONFINED") || !strings.Contains(ev.String(), "plugin.llm.replay") {
				t.Errorf("the run's steps do not warn about the unconfined plugin:\n%s", ev.String())
			}
			if !strings.Contains(string(audit), `"decision":"unconfined"`) {
				t.Errorf("the unconfined start is not audited:\n%s", audit)
			}
		})
	}
}
