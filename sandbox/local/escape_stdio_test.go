package local

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEscape_F18_StdioIsAPipeAndLogsAreCapped: the agent's stdout and
// stderr are a pipe the init stage drains, so truncate, fallocate and chmod
// through fd 1/2 reach no host file, and writing far more than the cap
// leaves at most two capped log files.
func TestEscape_F18_StdioIsAPipeAndLogsAreCapped(t *testing.T) {
	t.Parallel()
	testSetup(t)
	dir := t.TempDir()
	ws := filepath.Join(dir, "ws")
	if err := os.Mkdir(ws, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(ws, 0o777); err != nil {
		t.Fatal(err)
	}
	const limit = 256 << 10
	d, err := New(Config{StateRoot: filepath.Join(dir, "state"), LogMaxBytes: limit})
	if err != nil {
		t.Fatal(err)
	}
	script := `r=/workspace/attacks
o=$(readlink /proc/$$/fd/1); e=$(readlink /proc/$$/fd/2); echo "$o" >>$r; echo "$e" >>$r
echo before
truncate -s 0 /dev/stdout 2>/dev/null && echo truncated-stdout >>$r
truncate -s 0 /dev/stderr 2>/dev/null && echo truncated-stderr >>$r
fallocate -l 1G /dev/stdout 2>/dev/null && echo fallocated >>$r
fallocate -p -o 0 -l 4096 /dev/stdout 2>/dev/null && echo punched >>$r
dd if=/dev/zero bs=64k count=160 2>/dev/null
dd if=/dev/zero bs=64k count=160 >&2 2>/dev/null
echo after-the-flood`
	spec := testSpec(t, ws, "/bin/sh", "-c", script)
	createStart(t, d, spec)
	info, err := d.Wait(t.Context(), spec.Name)
	if err != nil {
		t.Fatal(err)
	}
	if info.ExitCode != 0 {
		t.Fatalf("agent exit: %+v", info)
	}
	attacks, _ := os.ReadFile(filepath.Join(ws, "attacks"))
	lines := strings.Split(strings.TrimSpace(string(attacks)), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "pipe:[") || lines[0] != lines[1] {
		t.Errorf("the agent's stdout/stderr should be one pipe and every attack should fail; it reported:\n%s", attacks)
	}
	logPath := filepath.Join(d.dir(spec.Name), "agent.log")
	st, err := os.Stat(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode() != 0o600 || st.Size() > limit {
		t.Errorf("agent.log: mode %v size %d, want 0600 and at most %d", st.Mode(), st.Size(), limit)
	}
	old, err := os.Stat(logPath + ".1")
	if err != nil || old.Size() > limit {
		t.Errorf("agent.log.1 (the rotated log): %v, size %d", err, func() int64 {
			if old == nil {
				return -1
			}
			return old.Size()
		}())
	}
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(b, []byte("after-the-flood\n")) {
		t.Errorf("the log does not end with the agent's last line: ...%q", b[max(0, len(b)-64):])
	}
	ents, _ := os.ReadDir(d.dir(spec.Name))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "agent.log") && e.Name() != "agent.log" && e.Name() != "agent.log.1" {
			t.Errorf("unexpected log file %s", e.Name())
		}
	}
}
