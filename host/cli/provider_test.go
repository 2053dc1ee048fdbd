package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const cliSecret = "nvapi-CLI-SECRET-0123456789"

func runCLIWithStdin(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	root := NewRoot("nemoclave")
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func TestProviderAddListRemoveNeverPrintsValues(t *testing.T) {
	home := t.TempDir()
	out, err := runCLIWithStdin(t, cliSecret+"\n", "--home", home, "provider", "add", "NVIDIA_API_KEY")
	if err != nil || !strings.Contains(out, `credential("NVIDIA_API_KEY")`) {
		t.Fatalf("%v %s", err, out)
	}
	st, err := os.Stat(filepath.Join(home, "credentials.json"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("%v %v", st, err)
	}
	t.Setenv("NEMOCLAVE_TEST_KEY_SRC", "sk-from-env-abcdef123")
	if out, err := runCLIWithStdin(t, "", "--home", home, "provider", "add", "OPENAI_API_KEY", "--from-env", "NEMOCLAVE_TEST_KEY_SRC"); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	var all string
	for _, format := range []string{"table", "json", "yaml"} {
		out, err := runCLIWithStdin(t, "", "--home", home, "-o", format, "provider", "list")
		if err != nil || !strings.Contains(out, "NVIDIA_API_KEY") || !strings.Contains(out, "OPENAI_API_KEY") {
			t.Fatalf("%s: %v %s", format, err, out)
		}
		all += out
	}
	if strings.Contains(all, cliSecret) || strings.Contains(all, "sk-from-env") {
		t.Fatalf("list printed a value: %s", all)
	}
	if out, err := runCLIWithStdin(t, "", "--home", home, "provider", "add", "EMPTY"); err == nil || !strings.Contains(err.Error(), "no value given") {
		t.Fatalf("empty stdin: %v %s", err, out)
	}
	if _, err := runCLIWithStdin(t, "", "--home", home, "provider", "add", "A", "B"); err == nil {
		t.Fatal("a value on the command line must be refused")
	}
	if out, err := runCLIWithStdin(t, "", "--home", home, "provider", "remove", "NVIDIA_API_KEY"); err != nil || !strings.Contains(out, "removed NVIDIA_API_KEY") {
		t.Fatalf("%v %s", err, out)
	}
	if _, err := runCLIWithStdin(t, "", "--home", home, "provider", "remove", "NVIDIA_API_KEY"); err == nil {
		t.Fatal("removing a missing credential must fail")
	}
	// A world-readable file is refused with the fix.
	if err := os.Chmod(filepath.Join(home, "credentials.json"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = runCLIWithStdin(t, "", "--home", home, "provider", "list")
	if err == nil || !strings.Contains(err.Error(), "chmod 600 "+filepath.Join(home, "credentials.json")) {
		t.Fatalf("%v", err)
	}
}
