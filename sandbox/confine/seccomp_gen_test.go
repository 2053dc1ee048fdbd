package confine

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"

	"golang.org/x/net/bpf"

	"github.com/nemoclave/nemoclave/sandbox/confine/seccompdeny"
)

// TestSeccompDenyGenerated: the deny list carried as data is exactly what
// go-seccomp-bpf assembles from DeniedSyscalls today, and the whole filter
// equals assembling part 1 and part 2 in one go (the filter the init stage
// loaded before the deny list became data).
func TestSeccompDenyGenerated(t *testing.T) {
	want, err := seccompdeny.Assemble(DeniedSyscalls)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(denyProgram, want) {
		t.Fatalf("seccomp_deny_gen.go is stale (%d instructions, go-seccomp-bpf assembles %d): run `go generate ./sandbox/confine`", len(denyProgram), len(want))
	}
	got, err := BuildSeccomp()
	if err != nil {
		t.Fatal(err)
	}
	var deny []bpf.Instruction
	for _, r := range want {
		deny = append(deny, r.Disassemble())
	}
	whole, err := bpf.Assemble(append(argGuard(), deny...))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, whole) {
		t.Fatal("BuildSeccomp differs from assembling the guard and the deny list together")
	}
	// And the generator writes the file as it is committed.
	out := filepath.Join(t.TempDir(), "gen.go")
	if b, err := exec.Command("go", "run", "./gendeny", out).CombinedOutput(); err != nil {
		t.Skipf("cannot run the generator here: %v: %s", err, b)
	}
	gen, _ := os.ReadFile(out)
	cur, _ := os.ReadFile("seccomp_deny_gen.go")
	if string(gen) != string(cur) {
		t.Fatal("seccomp_deny_gen.go differs from what ./gendeny writes: run `go generate ./sandbox/confine`")
	}
}
