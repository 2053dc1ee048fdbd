package e2e

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAbuse_R10_DataFilesPrivate: with a real sandbox running, every
// directory under $NEMOCLAVE_HOME is 0700 and every file 0600: another
// local user can read none of the daemon's data, run/<sandbox> included.
// The one exception is the sandbox's CA bundle (public certificates only,
// read by the sandbox through a bind mount), inside a 0700 directory.
func TestAbuse_R10_DataFilesPrivate(t *testing.T) {
	e := newEnv(t, "E2E_PROVIDER_KEY="+providerKey)
	cassette := filepath.Join(repoRoot(t), "examples", "quickstart", "cassette.json")
	dir := filepath.Join(t.TempDir(), "r10")
	copyDir(t, filepath.Join(repoRoot(t), "e2e", "testdata", "keepalive"), dir)
	bp := filepath.Join(dir, "blueprint.hcl")
	b, err := os.ReadFile(bp)
	if err != nil {
		t.Fatal(err)
	}
	const agent = `command = ["/bin/sh", "-c", "echo r10-ready; exec sleep 600"]`
	old := `command = ["/bin/sh", "-c", "\"$NEMOCLAVE_BIN\" agent -p \"$PROMPT\" && exec sleep 600"]`
	if !bytes.Contains(b, []byte(old)) {
		t.Fatal("the keepalive blueprint's agent command changed; update this test")
	}
	b = bytes.Replace(b, []byte(old), []byte(agent), 1)
	if err := os.WriteFile(bp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	e.must("run", "-d", bp, "--var", "cassette="+cassette)
	deadline := time.Now().Add(60 * time.Second)
	for {
		out := e.must("logs", "e2e")
		if strings.Contains(out, "r10-ready") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent never started:\n%s\n%s", out, e.daemonLog())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(e.home, "run", "e2e", "ca-bundle.pem")); err != nil {
		t.Fatalf("the sandbox's run directory is not where this test looks: %v", err)
	}
	var open []string
	err = filepath.WalkDir(e.home, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return nil // removed while walking
		}
		m := info.Mode()
		if d.Name() == "ca-bundle.pem" && m.Perm() == 0o644 {
			return nil
		}
		switch {
		case m.IsDir() && m.Perm()&0o077 != 0, m.IsRegular() && m.Perm()&0o077 != 0:
			open = append(open, m.String()+" "+strings.TrimPrefix(p, e.home))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(open) > 0 {
		t.Errorf("readable by other users under $NEMOCLAVE_HOME:\n%s", strings.Join(open, "\n"))
	}
	e.must("sandbox", "delete", "e2e")
}
