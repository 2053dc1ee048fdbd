package runtime

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nemoclave/nemoclave/host/daemon"
	"github.com/nemoclave/nemoclave/host/state"
	"github.com/nemoclave/nemoclave/sandbox"
)

// BenchmarkHandRunShare prices the step a hand run on a daemon with shared
// state adds (pack the blueprint's directory, write it, evaluate it
// confined) against the evaluation every run makes (its peer, alternated
// by -count); and one poll of the serving loop with 10 running sandboxes
// recorded and nothing to serve.
func BenchmarkHandRunShare(b *testing.B) {
	ctx := context.Background()
	d := newFakeDriver(0)
	d.stayUp = true
	r, err := New(ctx, Options{Home: b.TempDir(), Drivers: map[string]sandbox.Driver{"local": d}, Executable: "/bin/true", PluginBinDir: pluginDir})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = r.Close(context.Background()) })
	dir := b.TempDir()
	data, err := os.ReadFile(cassette)
	if err != nil {
		b.Fatal(err)
	}
	_ = os.WriteFile(filepath.Join(dir, "cassette.json"), data, 0o644)
	src := strings.Replace(withModel(oneAgent), fmt.Sprintf("%q", cassette), `"${path.blueprint}/cassette.json"`, 1)
	_ = os.WriteFile(filepath.Join(dir, "blueprint.hcl"), []byte(src), 0o644)
	req := daemon.RunRequest{Path: filepath.Join(dir, "blueprint.hcl"), HandRun: true}
	bp, err := r.evaluate(ctx, req)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("evaluate", func(b *testing.B) {
		for b.Loop() {
			if _, err := r.evaluate(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("share", func(b *testing.B) {
		for b.Loop() {
			var h *state.HandRun
			if _, err := r.shareHandRun(ctx, bp, req, &h); err != nil || h == nil {
				b.Fatal(err)
			}
		}
	})
	for i := range 10 {
		if err := r.db.PutSandbox(ctx, state.Sandbox{Name: fmt.Sprintf("sb%d", i), Blueprint: "/bp", Driver: "local", State: "running"}); err != nil {
			b.Fatal(err)
		}
	}
	r.hand.served = map[string]handServed{}
	b.Run("poll", func(b *testing.B) {
		for b.Loop() {
			if err := r.serveHandRuns(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}
