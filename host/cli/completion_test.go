package cli

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/spf13/cobra"
)

// The sandbox-first form is rewritten for a <TAB> only once `connect` is a
// whole word: before that the root completes (sandboxes, then `connect`);
// after it, `sandbox connect` does (its flags). Real commands and
// unknown ones are left as they are.
func TestRewriteSandboxFirstCompletion(t *testing.T) {
	root := NewRoot("nemoclave")
	for _, c := range []struct{ in, want []string }{
		{[]string{"__complete", "qs", ""}, []string{"__complete", "qs", ""}},
		{[]string{"__complete", "qs", "connect"}, []string{"__complete", "qs", "connect"}},
		{[]string{"__complete", "qs", "connect", "--sh"}, []string{"__complete", "sandbox", "connect", "qs", "--sh"}},
		{[]string{"__completeNoDesc", "qs", "connect", ""}, []string{"__completeNoDesc", "sandbox", "connect", "qs", ""}},
		{[]string{"__complete", "logs", "connect", ""}, []string{"__complete", "logs", "connect", ""}},
		{[]string{"qs", "connect", "--shell"}, []string{"sandbox", "connect", "qs", "--shell"}},
		{[]string{"qs"}, []string{"qs"}},
	} {
		if got := rewriteSandboxFirst(root, c.in); !slices.Equal(got, c.want) {
			t.Errorf("rewriteSandboxFirst(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// run parses its own flags (-var as Terraform writes it), so its argument
// completion gets raw words: a flag's value goes to the flag's completion
// with the positional words, and flags are not taken for the blueprint.
func TestOwnFlagParsingCompletion(t *testing.T) {
	root := NewRoot("nemoclave")
	run := findCommand(root, "run")
	if run == nil || !run.DisableFlagParsing {
		t.Fatal("run no longer parses its own flags; this test is moot")
	}
	var gotArgs []string
	fn := withOwnFlagParsing(func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		gotArgs = args
		return []string{"arg"}, cobra.ShellCompDirectiveNoFileComp
	})
	bp := filepath.Join(t.TempDir(), "blueprint.hcl")
	if err := os.WriteFile(bp, []byte("agent \"writer\" {\n}\nagent \"reviewer\" {\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, _ := fn(run, []string{"-d", "-var", "x=1", bp, "--attach-agent"}, "")
	if !slices.Equal(got, []string{"reviewer", "writer"}) {
		t.Errorf("--attach-agent after %s completes to %q, want its agents", bp, got)
	}
	if got, _ := fn(run, []string{"-d", "-var", "x=1", "--var-file", "f.hcl"}, ""); !slices.Equal(got, []string{"arg"}) || len(gotArgs) != 0 {
		t.Errorf("after flags only: %q with positional %q, want the argument completion with none", got, gotArgs)
	}
	if _, d := fn(run, []string{bp, "--var-file"}, ""); d != cobra.ShellCompDirectiveFilterFileExt {
		t.Errorf("--var-file completes with directive %d, want .hcl files", d)
	}
}
