package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEscape_F20_LogsShowControlSequencesEscaped: an agent in a real
// sandbox prints OSC 52 (clipboard), OSC 0 (title) and a screen clear;
// `nemoclave logs` shows them as inert text, `--raw` as they are.
func TestEscape_F20_LogsShowControlSequencesEscaped(t *testing.T) {
	e := newEnv(t, "E2E_PROVIDER_KEY="+providerKey)
	cassette := filepath.Join(repoRoot(t), "examples", "quickstart", "cassette.json")
	dir := filepath.Join(t.TempDir(), "escape")
	copyDir(t, filepath.Join(repoRoot(t), "e2e", "testdata", "keepalive"), dir)
	bp := filepath.Join(dir, "blueprint.hcl")
	b, err := os.ReadFile(bp)
	if err != nil {
		t.Fatal(err)
	}
	const agent = `command = ["/bin/sh", "-c", "printf 'osc52:\\033]52;c;c2VjcmV0\\007 title:\\033]0;pwned\\007 clear:\\033[2J end\\n'; exec sleep 600"]`
	old := `command = ["/bin/sh", "-c", "\"$NEMOCLAVE_BIN\" agent -p \"$PROMPT\" && exec sleep 600"]`
	if !bytes.Contains(b, []byte(old)) {
		t.Fatal("the keepalive blueprint's agent command changed; update this test")
	}
	if err := os.WriteFile(bp, bytes.Replace(b, []byte(old), []byte(agent), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	e.must("run", "-d", bp, "--var", "cassette="+cassette)
	var escaped string
	deadline := time.Now().Add(60 * time.Second)
	for {
		escaped = e.must("logs", "e2e")
		if strings.Contains(escaped, "end") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent's line never reached the log:\n%q\n%s", escaped, e.daemonLog())
		}
		time.Sleep(200 * time.Millisecond)
	}
	want := `osc52:\x1b]52;c;c2VjcmV0\x07 title:\x1b]0;pwned\x07 clear:\x1b[2J end`
	if !strings.Contains(escaped, want) || strings.ContainsAny(escaped, "\x1b\x07") {
		t.Errorf("nemoclave logs shows %q, want the sequences escaped as %q", escaped, want)
	}
	raw := e.must("logs", "e2e", "--raw")
	if !strings.Contains(raw, "osc52:\x1b]52;c;c2VjcmV0\x07 title:\x1b]0;pwned\x07 clear:\x1b[2J end") {
		t.Errorf("nemoclave logs --raw shows %q, want the bytes unchanged", raw)
	}
	e.must("sandbox", "delete", "e2e")
}
