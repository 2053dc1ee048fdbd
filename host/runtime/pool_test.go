package runtime

import (
	"strings"
	"testing"

	"github.com/nemoclave/nemoclave/host/daemon"
)

// Runs whose plugin blocks resolve to the same launch share one process;
// a different configuration gets its own; the process stops when the last
// run holding it is deleted, not before.
func TestRunsSharePluginProcesses(t *testing.T) {
	t.Parallel()
	r, ctx := upRuntime(t)
	box := func(name string) string {
		return strings.NewReplacer(`sandbox "box"`, `sandbox "`+name+`"`, "sandbox.box", "sandbox."+name).Replace(oneAgent)
	}
	for _, name := range []string{"one", "two", "three"} {
		if err := r.Run(ctx, daemon.RunRequest{Path: writeBlueprint(t, withModel(box(name))), Detach: true}, &events{}); err != nil {
			t.Fatalf("run %s: %v", name, err)
		}
	}
	if n := r.pool.running(); n != 1 {
		t.Fatalf("three runs of one plugin configuration hold %d plugin processes, want 1", n)
	}
	// Another configuration (an upstream model, unused in replay) is
	// another launch.
	other := strings.Replace(withModel(box("four")), `mode     = "replay"`, `mode     = "replay"
    upstream_model = "other"`, 1)
	if err := r.Run(ctx, daemon.RunRequest{Path: writeBlueprint(t, other), Detach: true}, &events{}); err != nil {
		t.Fatalf("run four: %v", err)
	}
	if n := r.pool.running(); n != 2 {
		t.Fatalf("a fourth run with another configuration: %d plugin processes, want 2", n)
	}
	for i, name := range []string{"one", "two", "four", "three"} {
		if _, err := r.DeleteSandbox(ctx, name); err != nil {
			t.Fatal(err)
		}
		want := []int{2, 2, 1, 0}[i]
		if n := r.pool.running(); n != want {
			t.Fatalf("after deleting %s: %d plugin processes, want %d", name, n, want)
		}
	}
}
