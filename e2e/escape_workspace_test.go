package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestEscape_P11_WorkspaceBoundThroughDaemon: a blueprint with
// resources.workspace_size run by the real daemon. The agent fills the
// workspace from inside the sandbox and the write fails at the bound; after
// the run the files are back in the host directory, which holds no more
// than the bound, is no longer a mount point, and no image is left.
func TestEscape_P11_WorkspaceBoundThroughDaemon(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("resources.workspace_size loop-mounts an image: it needs a root daemon (CI runs as root)")
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		t.Skip("no loop devices here (/dev/loop-control): " + err.Error())
	}
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		t.Skip("mkfs.ext4 is not installed (apt-get install e2fsprogs)")
	}
	e := newEnv(t, "E2E_PROVIDER_KEY="+providerKey)
	cassette := filepath.Join(repoRoot(t), "examples", "quickstart", "cassette.json")
	dir := filepath.Join(t.TempDir(), "bound")
	copyDir(t, filepath.Join(repoRoot(t), "e2e", "testdata", "keepalive"), dir)
	bp := filepath.Join(dir, "blueprint.hcl")
	b, err := os.ReadFile(bp)
	if err != nil {
		t.Fatal(err)
	}
	const agent = `command = ["/bin/sh", "-c", "echo before-fill > /workspace/before.txt; dd if=/dev/zero of=/workspace/fill bs=1M count=64 2>&1 | grep -o 'No space left on device' | head -1"]`
	old := `command = ["/bin/sh", "-c", "\"$NEMOCLAVE_BIN\" agent -p \"$PROMPT\" && exec sleep 600"]`
	oldRes := `    pids   = 256
`
	if !bytes.Contains(b, []byte(old)) || !bytes.Contains(b, []byte(oldRes)) {
		t.Fatal("the keepalive blueprint's agent command or resources changed; update this test")
	}
	b = bytes.Replace(b, []byte(old), []byte(agent), 1)
	b = bytes.Replace(b, []byte(oldRes), []byte(oldRes+"    workspace_size = \"16MiB\"\n"), 1)
	if err := os.WriteFile(bp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out := e.must("run", bp, "--var", "cassette="+cassette)
	if !strings.Contains(out, "No space left on device") {
		t.Errorf("the agent's fill did not meet the bound:\n%s", out)
	}
	ws := filepath.Join(dir, "workspace")
	if got, err := os.ReadFile(filepath.Join(ws, "before.txt")); err != nil || string(got) != "before-fill\n" {
		t.Errorf("before.txt on the host after the run: %q %v", got, err)
	}
	if st, err := os.Stat(filepath.Join(ws, "fill")); err != nil || st.Size() > 16<<20 || st.Size() < 4<<20 {
		t.Errorf("the fill file on the host: %v %v; want it stopped below the 16 MiB bound", st, err)
	}
	var wst, pst syscall.Stat_t
	if err := syscall.Stat(ws, &wst); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Stat(dir, &pst); err != nil {
		t.Fatal(err)
	}
	if wst.Dev != pst.Dev {
		t.Error("the workspace is still a mount point after the run")
	}
	if imgs, _ := filepath.Glob(filepath.Join(e.home, "volumes", "*.img")); len(imgs) != 0 {
		t.Errorf("images left after the run: %v", imgs)
	}
	e.must("sandbox", "delete", "e2e")
}
