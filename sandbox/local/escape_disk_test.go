package local

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/nemoclave/nemoclave/sandbox"
	"github.com/nemoclave/nemoclave/sandbox/volume"
)

// P11: the agent fills /tmp (and /dev/shm) and the workspace. /tmp is a
// tmpfs sized by resources.tmp: the write fails with ENOSPC at the limit
// and nothing reaches the host disk. The workspace is a host directory:
// the local driver bounds each file (process.max_file_size_mb), not the
// total unless resources.workspace_size is set (TestEscape_P11_WorkspaceBound;
// docs/sandbox.md, "Disk").
func TestEscape_P11_FillTmpAndWorkspace(t *testing.T) {
	modes(t, func(t *testing.T, mode string) {
		dir, ws := jobDir(t, mode)
		p := testPolicy()
		p.Process.MaxFileSizeMB = 32
		res := run(t, mode, dir, ws, job{Argv: []string{"/bin/sh", "-c", `
dd if=/dev/zero of=/tmp/fill bs=1M count=64 2>&1 | grep -o 'No space left on device' | head -1
echo "tmp kib $(du -k /tmp/fill | cut -f1)"
dd if=/dev/zero of=/dev/shm/fill bs=1M count=64 2>&1 | grep -o 'No space left on device' | head -1
(dd if=/dev/zero of=/workspace/fill bs=1M count=64 2>/dev/null); echo "workspace dd status $?"
echo "ws kib $(du -k /workspace/fill | cut -f1)"
rm -f /tmp/fill && echo small > /tmp/after && echo "tmp usable again"`},
			Policy: p, Resources: sandbox.Resources{TmpBytes: 16 << 20}})
		if res.StartErr != "" {
			t.Fatal(res.StartErr)
		}
		expectLines(t, res.Output, "No space left on device", "tmp kib 16384", "tmp usable again")
		if strings.Count(res.Output, "No space left on device") != 2 {
			t.Errorf("/dev/shm was not bounded:\n%s", res.Output)
		}
		// SIGXFSZ (128+25) at the per-file limit; the host file stops there.
		expectLines(t, res.Output, "workspace dd status 153", "ws kib 32768")
		if st, err := os.Stat(filepath.Join(ws, "fill")); err != nil || st.Size() > 32<<20 {
			t.Errorf("workspace file on the host: %v %v", st, err)
		}
	})
}

// P11, the workspace's total: with resources.workspace_size the workspace
// is covered by a volume (package sandbox/volume, mounted by the runtime
// before the gateway tools open it). From inside, filling it fails with
// ENOSPC at the bound; the host directory holds no more than the bound
// after the run, and the files written before are there. Without the
// volume the driver refuses to start rather than run unbounded. The real
// tools-files plugin, writing the same workspace from the host, meets the
// same bound.
func TestEscape_P11_WorkspaceBound(t *testing.T) {
	modes(t, func(t *testing.T, mode string) {
		if _, err := os.Stat("/dev/loop-control"); err != nil {
			t.Skip("no loop devices here (/dev/loop-control), the workspace volume cannot be mounted: " + err.Error())
		}
		if _, err := exec.LookPath("mkfs.ext4"); err != nil {
			t.Skip("mkfs.ext4 is not installed (apt-get install e2fsprogs): the workspace volume cannot be built")
		}
		dir, ws := jobDir(t, mode)
		if err := os.WriteFile(filepath.Join(ws, "before-run.txt"), []byte("from the host"), 0o644); err != nil {
			t.Fatal(err)
		}
		chownTree(t, mode, ws)
		p := testPolicy()
		p.Process.MaxFileSizeMB = 256 // the bound, not the per-file cap, stops the write
		res := sandbox.Resources{WorkspaceBytes: 32 << 20}

		unbound := run(t, mode, dir, ws, job{Argv: []string{"/bin/true"}, Policy: p, Resources: res})
		if !strings.Contains(unbound.StartErr, "not covered by a volume") {
			t.Fatalf("workspace_size without a volume: start error %q, want a refusal", unbound.StartErr)
		}

		image := volume.Image(filepath.Join(dir, "volumes"), ws)
		v, err := volume.Mount(image, ws, res.WorkspaceBytes)
		if err != nil {
			t.Fatal(err)
		}
		released := false
		t.Cleanup(func() {
			if !released {
				_ = v.Release()
			}
		})
		// The gateway tools open the workspace after the mount, as the
		// runtime orders it: they write into the same bounded volume.
		tools := newTools(t, ws, p.Filesystem)
		out := run(t, mode, dir, ws, job{Argv: []string{"/bin/sh", "-c", `
cat /workspace/before-run.txt; echo
echo "written in the run" > /workspace/in-run.txt
dd if=/dev/zero of=/workspace/fill bs=1M count=128 2>&1 | grep -o 'No space left on device' | head -1
echo "ws kib $(du -sk /workspace | cut -f1)"
rm /workspace/in-run.txt && echo "kept" > /workspace/in-run.txt && echo "writable after removal"`},
			Policy: p, Resources: res})
		if out.StartErr != "" {
			t.Fatal(out.StartErr)
		}
		expectLines(t, out.Output, "from the host", "No space left on device", "writable after removal")
		// A gateway tool writing on the agent's behalf meets the same bound
		// (the file system may free a little after the agent's fill, as
		// delayed allocations settle): appending 256 KiB at a time fails
		// before another bound's worth is written.
		chunk := strings.Repeat("x", 256<<10)
		text, isErr, calls := "", false, 0
		for ; calls < int(res.WorkspaceBytes/int64(len(chunk))) && !isErr; calls++ {
			text, isErr = tools.call(t, "write_file", map[string]any{"path": "by-tool.txt", "content": chunk, "append": true})
		}
		if !isErr || !strings.Contains(text, "the workspace is full") {
			t.Errorf("write_file into the full workspace, %d calls: error=%v %q; want \"the workspace is full\"", calls, isErr, text)
		}
		var st syscall.Stat_t
		if err := syscall.Stat(image, &st); err != nil {
			t.Fatal(err)
		}
		if st.Blocks*512 > res.WorkspaceBytes {
			t.Errorf("the image takes %d bytes of the host disk, past the %d-byte bound", st.Blocks*512, res.WorkspaceBytes)
		}
		tools.s.Close()
		released = true
		if err := v.Release(); err != nil {
			t.Fatal(err)
		}
		var total int64
		_ = filepath.Walk(ws, func(_ string, info os.FileInfo, err error) error {
			if err == nil && info.Mode().IsRegular() {
				total += info.Size()
			}
			return nil
		})
		if total > res.WorkspaceBytes || total < res.WorkspaceBytes/2 {
			t.Errorf("the host workspace holds %d bytes after the run; want the fill stopped near the %d-byte bound", total, res.WorkspaceBytes)
		}
		for name, want := range map[string]string{"before-run.txt": "from the host", "in-run.txt": "kept\n"} {
			if b, err := os.ReadFile(filepath.Join(ws, name)); err != nil || string(b) != want {
				t.Errorf("%s on the host after the run: %q %v, want %q", name, b, err, want)
			}
		}
	})
}
