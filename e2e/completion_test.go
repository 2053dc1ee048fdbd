package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// complete runs bash's completion of line for real: it sources the
// script `nemoclave completion bash` prints, sets up the words as bash
// does on <TAB>, calls the completion function and returns COMPREPLY.
func (e *env) complete(dir, line string) []string {
	e.t.Helper()
	script := `source /usr/share/bash-completion/bash_completion
source <(nemoclave completion bash)
read -ra COMP_WORDS <<<"$LINE"
[[ "$LINE" == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
COMP_LINE="$LINE"
COMP_POINT=${#LINE}
__start_nemoclave
printf '%s\n' "${COMPREPLY[@]}"
`
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(slices.Clone(e.vars), "LINE="+line, "PATH="+e.bin+":"+os.Getenv("PATH"))
	// Only stdout: compopt complains on stderr outside a real <TAB>.
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		e.t.Fatalf("bash completion of %q: %v\n%s%s", line, err, out, stderr.String())
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			got = append(got, l)
		}
	}
	return got
}

// TestBashCompletion completes what only a running installation knows
// (sandbox names from the daemon, presets, providers, log sources,
// blueprint files) through bash itself, as a user's <TAB> does.
func TestBashCompletion(t *testing.T) {
	needBashCompletion(t)
	e := newEnv(t)
	dir := filepath.Join(t.TempDir(), "quickstart")
	copyDir(t, filepath.Join(repoRoot(t), "examples", "quickstart"), dir)
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a blueprint"), 0o644); err != nil {
		t.Fatal(err)
	}

	// Without a daemon, sandbox names complete to nothing, and no daemon
	// is started by a <TAB>.
	if got := e.complete(dir, "nemoclave sandbox get "); len(got) != 0 {
		t.Errorf("sandbox names without a daemon: %q", got)
	}
	if _, err := os.Stat(filepath.Join(e.home, "run", "nemoclave.sock")); err == nil {
		t.Fatal("a completion started the daemon")
	}

	// Before anything runs, the llm providers of the blueprint in the
	// working directory complete, as the blueprint names them.
	if got := e.complete(dir, "nemoclave inference set --provider "); !slices.Contains(got, "replay") {
		t.Errorf("inference set --provider beside the quickstart blueprint completes to %q, want replay", got)
	}

	e.must("run", "-d", filepath.Join(dir, "blueprint.hcl"))
	// The default provider of config.yaml completes even when no sandbox
	// runs (the quickstart's agent may have answered and exited by now).
	e.must("inference", "set", "--provider", "replay", "--model", "replay")
	cases := []struct {
		line string
		want []string
		not  []string
	}{
		{"nemoclave sandbox get ", []string{"quickstart"}, nil},
		{"nemoclave logs qu", []string{"quickstart"}, nil},
		{"nemoclave logs quickstart --source ", []string{"sandbox", "gateway", "plugin", "audit"}, nil},
		// --tail's count is optional: after it, nothing is offered (a
		// second sandbox name would be refused).
		{"nemoclave logs quickstart --tail ", nil, []string{"quickstart"}},
		{"nemoclave logs quickstart --ta", []string{"--tail"}, nil},
		{"nemoclave policy add-preset quickstart ", []string{"pypi", "github", "npm"}, []string{"quickstart"}},
		{"nemoclave onboard --provider ", []string{"nvidia", "ollama", "vllm", "nim", "replay"}, nil},
		{"nemoclave onboard --provider ollama --model ", []string{"llama3.1"}, []string{"gpt-4.1"}},
		{"nemoclave inference set --provider ", []string{"replay"}, nil},
		{"nemoclave inference status --sandbox ", []string{"quickstart"}, nil},
		{"nemoclave approvals list --sandbox ", []string{"quickstart"}, nil},
		{"nemoclave run ", []string{"blueprint.hcl"}, []string{"notes.txt"}},
		{"nemoclave provider add ", []string{"NVIDIA_API_KEY", "OPENAI_API_KEY"}, nil},
		// The sandbox-first form: `nemoclave <sandbox> connect`.
		{"nemoclave quick", []string{"quickstart"}, nil},
		{"nemoclave quickstart ", []string{"connect"}, nil},
		{"nemoclave nosuchsandbox ", nil, []string{"connect"}},
		{"nemoclave quickstart connect --sh", []string{"--shell"}, nil},
		{"nemoclave run blueprint.hcl --attach-agent ", []string{"assistant"}, nil},
		{"nemoclave run . --attach-agent ", []string{"assistant"}, nil},
	}
	for _, c := range cases {
		got := e.complete(dir, c.line)
		for _, w := range c.want {
			if !slices.Contains(got, w) {
				t.Errorf("%q completes to %q, want %q among them", c.line, got, w)
			}
		}
		for _, n := range c.not {
			if slices.Contains(got, n) {
				t.Errorf("%q completes to %q, which must not offer %q", c.line, got, n)
			}
		}
	}
	e.must("sandbox", "delete", "quickstart")
}

// needBashCompletion makes sure the bash-completion package, which
// cobra's bash completion builds on (as every Debian login shell has it),
// is installed: from apt as root, as CI runs; otherwise the test cannot run.
func needBashCompletion(t *testing.T) {
	t.Helper()
	const lib = "/usr/share/bash-completion/bash_completion"
	if _, err := os.Stat(lib); err == nil {
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("bash completion needs the bash-completion package: sudo apt-get install bash-completion")
	}
	install := exec.Command("sh", "-c", "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bash-completion || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bash-completion)")
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("install bash-completion: %v\n%s", err, out)
	}
}
