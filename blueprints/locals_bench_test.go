package blueprints

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// BenchmarkChainedLocals compares, alternating in one loop, the two ways
// local values have been evaluated, on a chain of MaxLocals locals each
// naming the one before (l<i> = local.l<i-1> + 1): "named", each local's
// context holding only the locals it names (localContext, since the R6
// fix), and "all", each local's context holding the object of every local
// (evalWithAllLocals: the evaluation before the fix, quadratic in the
// number of locals). Both must give the chain's last value; ns per load
// of each are reported as custom metrics.
func BenchmarkChainedLocals(b *testing.B) {
	chain := func() []byte {
		var s strings.Builder
		s.WriteString("locals {\n  l0 = 1\n")
		for i := 1; i < MaxLocals; i++ {
			fmt.Fprintf(&s, "  l%d = local.l%d + 1\n", i, i-1)
		}
		s.WriteString("}\n" + minimalSandbox + fmt.Sprintf("agent \"a\" {\n  sandbox = sandbox.s\n  command = [\"echo\", \"${local.l%d}\"]\n}\n", MaxLocals-1))
		return []byte(s.String())
	}
	src := chain()
	variants := []struct {
		name string
		all  bool
		took time.Duration
	}{{name: "named"}, {name: "all", all: true}}
	defer func() { evalWithAllLocals = false }()
	for range b.N {
		for i := range variants {
			v := &variants[i]
			l := NewLoader(Options{Schemas: testSchemas(), LookupEnv: testEnv})
			evalWithAllLocals = v.all
			t := time.Now()
			bp, diags := l.LoadSources(context.Background(), "testdata/valid", map[string][]byte{"test.hcl": src})
			v.took += time.Since(t)
			if diags.HasErrors() {
				b.Fatalf("%s: %s", v.name, FormatDiagnostics(l.Files(), diags, 0))
			}
			if got := bp.Agents[0].Command; len(got) != 2 || got[1] != fmt.Sprint(MaxLocals) {
				b.Fatalf("%s: the chain's last local is %q, want %d", v.name, got, MaxLocals)
			}
		}
	}
	for _, v := range variants {
		b.ReportMetric(float64(v.took.Nanoseconds())/float64(b.N), v.name+"-ns/load")
	}
}
