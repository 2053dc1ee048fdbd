package pluginbox_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/host/plugins"
	"github.com/nemoclave/nemoclave/sandbox"
	"github.com/nemoclave/nemoclave/sandbox/pluginbox"
	"github.com/nemoclave/nemoclave/sdk/embeddings"
	"github.com/nemoclave/nemoclave/sdk/plugin"
)

// The cost of confinement, recorded in BENCHMARKS.md: cold start (launch,
// checksum, handshake, configure) and one Embed round trip of the builtin
// embeddings-hash plugin, plain and in a box. Needs the builtin plugins:
// `make build`, then NEMOCLAVE_BIN_DIR=$PWD/bin.

func benchManager(b *testing.B, confined bool) *plugins.Manager {
	binDir := os.Getenv(plugins.BinDirEnv)
	if binDir == "" {
		b.Skip("set NEMOCLAVE_BIN_DIR to a directory with the builtin plugins (make build)")
	}
	home := b.TempDir()
	opts := plugins.Options{Home: home, BinDir: binDir, StartTimeout: time.Minute}
	if confined {
		root := filepath.Join(home, "pluginbox-root")
		if err := os.MkdirAll(root, 0o755); err != nil {
			b.Fatal(err)
		}
		// The launcher the daemon uses when it is installed (make build).
		exe := filepath.Join(binDir, "nemoclave-pluginbox")
		if _, err := os.Stat(exe); err != nil {
			exe, _ = os.Executable()
		}
		opts.Box = &pluginbox.Box{Launcher: exe, RootDir: root, CgroupParent: "nemoclave-pluginbox-bench"}
	}
	m, err := plugins.New(opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(m.Close)
	return m
}

func report(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

func BenchmarkColdStart(b *testing.B) {
	for _, confined := range []bool{false, true} {
		b.Run(fmt.Sprintf("confined=%v", confined), func(b *testing.B) {
			m := benchManager(b, confined)
			ctx := context.Background()
			bin, err := m.Resolve("builtin/embeddings-hash")
			if err != nil {
				b.Fatal(err)
			}
			spec := plugins.Spec{Kind: plugin.KindEmbeddings, Name: "bench", Access: &pluginbox.Profile{Resources: sandbox.Resources{Pids: 64}}}
			var lat []time.Duration
			var cpu int64
			for b.Loop() {
				t0 := time.Now()
				l, err := m.Launch(ctx, bin, spec)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := l.Configure(ctx, plugin.ConfigureOptions{Config: []byte(`{"dimensions":256}`), StateDir: b.TempDir()}); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
				b.StopTimer()
				cpu += taskCPU(l.Pid())
				l.Kill()
				b.StartTimer()
			}
			report(b, lat)
			// The plugin process's CPU up to the end of Configure; in a box
			// it includes the init stage, which execs the plugin in place.
			b.ReportMetric(float64(cpu)/float64(len(lat))/1e3, "plugin-cpu-µs")
		})
	}
}

func BenchmarkEmbedRoundTrip(b *testing.B) {
	for _, confined := range []bool{false, true} {
		b.Run(fmt.Sprintf("confined=%v", confined), func(b *testing.B) {
			m := benchManager(b, confined)
			ctx := context.Background()
			s, err := m.Start(ctx, plugins.Spec{Source: "builtin/embeddings-hash", Config: []byte(`{"dimensions":256}`),
				Access: &pluginbox.Profile{Resources: sandbox.Resources{Pids: 64}}})
			if err != nil {
				b.Fatal(err)
			}
			e := s.Embeddings()
			req := &embeddings.EmbedRequest{Inputs: []string{"the quick brown fox jumps over the lazy dog"}}
			if _, err := e.Embed(ctx, req); err != nil {
				b.Fatal(err)
			}
			var lat []time.Duration
			for b.Loop() {
				t0 := time.Now()
				if _, err := e.Embed(ctx, req); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			report(b, lat)
		})
	}
}

// taskCPU is the CPU time of pid's live threads (schedstat, ns).
func taskCPU(pid int) int64 {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var sum int64
	for _, e := range ents {
		raw, err := os.ReadFile(filepath.Join(dir, e.Name(), "schedstat"))
		if err != nil {
			continue
		}
		var ns int64
		if _, err := fmt.Sscan(string(raw), &ns); err == nil {
			sum += ns
		}
	}
	return sum
}
