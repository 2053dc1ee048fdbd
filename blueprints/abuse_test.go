package blueprints

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestAbuse_R6_BoundedEvaluation: pathological blueprints end in a
// diagnostic, in bounded time and memory, instead of a stack overflow,
// an OOM or a hang of the evaluating daemon.
func TestAbuse_R6_BoundedEvaluation(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.txt")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	// Sparse: MaxFileBytes+1 bytes long, no disk used.
	if err := f.Truncate(MaxFileBytes + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	deep := strings.Repeat("(", 100000) + "1" + strings.Repeat(")", 100000)
	deepTmpl := filepath.Join(dir, "deep.tmpl")
	if err := os.WriteFile(deepTmpl, []byte("${"+deep+"}"), 0o600); err != nil {
		t.Fatal(err)
	}
	for expr, want := range map[string]string{
		deep:                                   "nests brackets more than 256 levels",
		`file("/dev/zero")`:                    "is not a regular file",
		`file("` + fifo + `")`:                 "is not a regular file",
		`file("` + dir + `")`:                  "is not a regular file",
		`file("` + big + `")`:                  "more than the 4194304 allowed",
		`templatefile("` + big + `", {})`:      "more than the 4194304 allowed",
		`templatefile("` + deepTmpl + `", {})`: "nests brackets more than 256 levels",
	} {
		name := expr
		if len(name) > 40 {
			name = name[:40]
		}
		t.Run(name, func(t *testing.T) {
			wantError(t, "locals {\n  x = "+expr+"\n}\n", Options{}, want)
		})
	}
}

// TestAbuse_R6_Locals: 100k locals end in one diagnostic naming the bound
// (evaluated one by one they took minutes); a chain of MaxLocals locals,
// each referring to the one before, still evaluates to its value.
func TestAbuse_R6_Locals(t *testing.T) {
	chain := func(n int) string {
		var b strings.Builder
		b.WriteString("locals {\n  l0 = 1\n")
		for i := 1; i < n; i++ {
			fmt.Fprintf(&b, "  l%d = local.l%d + 1\n", i, i-1)
		}
		b.WriteString("}\n")
		return b.String()
	}
	wantError(t, chain(100000)+minimalSandbox, Options{}, fmt.Sprintf("declares 100000 local values; at most %d are allowed", MaxLocals))

	src := chain(MaxLocals) + minimalSandbox + fmt.Sprintf(`
agent "a" {
  sandbox = sandbox.s
  command = ["echo", "${local.l%d}"]
}
`, MaxLocals-1)
	bp := mustLoad(t, src, Options{})
	if got := bp.Agents[0].Command; len(got) != 2 || got[1] != fmt.Sprint(MaxLocals) {
		t.Fatalf("the last local of a %d-long chain: agent command %q, want [echo %d]", MaxLocals, got, MaxLocals)
	}
}
