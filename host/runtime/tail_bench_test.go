package runtime

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	goruntime "runtime"
	"testing"
	"time"
)

// BenchmarkPluginLogTail compares, alternating in one loop on one 8 MiB
// plugin log, the two ways `logs --source plugin --tail 50` has read it:
// "whole" reads the whole file and keeps its last lines (what the daemon
// did before the per-sandbox logs; it also rendered every JSON line, which
// is left out here, so this understates the old cost), "backwards" is
// copyTail (read blocks backwards from the end until 50 lines are found).
// Reported per variant: ns/tail and bytes read (B/tail) as custom metrics.
func BenchmarkPluginLogTail(b *testing.B) {
	path := filepath.Join(b.TempDir(), "plugins.log")
	var buf bytes.Buffer
	for i := 0; buf.Len() < pluginLogMaxBytes; i++ {
		fmt.Fprintf(&buf, "2026-12-04T23:00:00.000000Z info  plugin.tools.main: call on stderr label=A sandbox=alpha n=%d\n", i)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		b.Fatal(err)
	}
	const n = 50
	var whole, back time.Duration
	var wholeOut, backOut countWriter
	for range b.N {
		// Each variant starts after a collection, so the garbage of one
		// (the whole read's 8 MiB) is not paid for in the other's time.
		goruntime.GC()
		t := time.Now()
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		all, err := io.ReadAll(f)
		f.Close()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := wholeOut.Write(lastLines(all, n)); err != nil {
			b.Fatal(err)
		}
		whole += time.Since(t)

		goruntime.GC()
		t = time.Now()
		if err := copyTail(path, n, &backOut); err != nil {
			b.Fatal(err)
		}
		back += time.Since(t)
	}
	if wholeOut.n != backOut.n {
		b.Fatalf("the two reads disagree: %d and %d bytes of output", wholeOut.n, backOut.n)
	}
	b.ReportMetric(float64(whole.Nanoseconds())/float64(b.N), "whole-ns/tail")
	b.ReportMetric(float64(back.Nanoseconds())/float64(b.N), "backwards-ns/tail")
	b.ReportMetric(float64(len(buf.Bytes())), "file-bytes")
}

type countWriter struct{ n int }

func (c *countWriter) Write(p []byte) (int, error) { c.n += len(p); return len(p), nil }
