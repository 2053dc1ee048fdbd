package local

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nemoclave/nemoclave/sandbox"
)

// P11: the agent fills /tmp (and /dev/shm) and the workspace. /tmp is a
// tmpfs sized by resources.tmp: the write fails with ENOSPC at the limit
// and nothing reaches the host disk. The workspace is a host directory:
// the local driver bounds each file (process.max_file_size_mb), not the
// total (see docs/sandbox.md, "Disk").
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
