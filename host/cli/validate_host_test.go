package cli

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/nemoclave/nemoclave/host/credentials"
)

// runValidateIn runs `validate path` with the given home.
func runValidateIn(t *testing.T, home, path string) (string, int) {
	t.Helper()
	root := NewRoot("nemoclave")
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs([]string{"--home", home, "validate", path})
	err := root.ExecuteContext(context.Background())
	var ee *ExitError
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &ee):
		return out.String(), ee.Code
	}
	return out.String() + err.Error(), 1
}

// TestValidateRejectsWhatRunRejects is the list: each blueprint
// that `run` refused only after starting work is a located diagnostic of
// validate.
func TestValidateRejectsWhatRunRejects(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, src, at, snippet, detail string
	}{
		{"invalid sandbox name", `
policy "p" {
  unknown_hosts = "deny"
}

sandbox "My_Box" {
  policy = policy.p
}
`, "6:9", `sandbox "My_Box" {`, `(like "my-box")`},
		{"two agents in one sandbox", cliBase + `
agent "a" {
  sandbox = sandbox.s
  command = ["nemoclave", "agent"]
}

agent "b" {
  sandbox = sandbox.s
  command = ["nemoclave", "agent"]
}
`, "16:13", "sandbox = sandbox.s", `agents "a" and "b" both use sandbox "s"`},
		{"kubernetes without a cluster", `
policy "p" {
  unknown_hosts = "deny"
}

sandbox "k" {
  driver = "kubernetes"
  policy = policy.p
}
`, "7:12", `driver = "kubernetes"`, "nemoclave-k8s"},
		{"missing credential", `
plugin "llm" "nim" {
  source = "builtin/llm-openai"
  config {
    api_key = credential("NEMOCLAVE_TEST_ABSENT_KEY")
  }
}
` + cliBase, "5:15", `api_key = credential("NEMOCLAVE_TEST_ABSENT_KEY")`, "nemoclave provider add"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			path := writeBlueprint(t, c.src)
			out, code := runValidateIn(t, t.TempDir(), path)
			if code != 1 {
				t.Fatalf("exit %d, want 1\n%s", code, out)
			}
			for _, want := range []string{path + ":" + c.at + ": error: ", c.snippet, c.detail} {
				if !strings.Contains(out, want) {
					t.Errorf("diagnostics lack %q:\n%s", want, out)
				}
			}
		})
	}
}

// A credential in the store passes, and validate never prints its value,
// not even next to the diagnostic of another, missing one.
func TestValidateCredentialFromStore(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	if err := credentials.NewFile(home).Set(context.Background(), "NEMOCLAVE_TEST_STORED_KEY", credentials.NewSecret(cliSecret)); err != nil {
		t.Fatal(err)
	}
	ok := writeBlueprint(t, `
plugin "llm" "nim" {
  source = "builtin/llm-openai"
  config {
    api_key = credential("NEMOCLAVE_TEST_STORED_KEY")
  }
}
`+cliBase)
	if out, code := runValidateIn(t, home, ok); code != 0 || strings.Contains(out, cliSecret) {
		t.Fatalf("exit %d\n%s", code, out)
	}
	bad := writeBlueprint(t, `
plugin "llm" "nim" {
  source = "builtin/llm-openai"
  config {
    api_key = credential("NEMOCLAVE_TEST_STORED_KEY")
  }
}

plugin "llm" "other" {
  source = "builtin/llm-openai"
  config {
    api_key = credential("NEMOCLAVE_TEST_ABSENT_KEY")
  }
}
`+cliBase)
	out, code := runValidateIn(t, home, bad)
	if code != 1 || !strings.Contains(out, "NEMOCLAVE_TEST_ABSENT_KEY") || strings.Contains(out, cliSecret) {
		t.Fatalf("exit %d\n%s", code, out)
	}
}
