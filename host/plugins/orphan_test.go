package plugins

import (
	"bufio"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// TestNoOrphansWhenHostIsKilled runs a helper host that launches a plugin,
// SIGKILLs the host, and requires the plugin to be gone (waitGone's bound is
// only a failure bound). Through the manager both Pdeathsig and the
// plugin's parent watch apply; the raw host launches without Pdeathsig, so
// the parent watch alone must do it.
func TestNoOrphansWhenHostIsKilled(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"host", "raw-host"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			exe, err := os.Executable()
			if err != nil {
				t.Fatal(err)
			}
			host := exec.Command(exe)
			host.Env = append(os.Environ(), helperEnv+"="+mode, binDirEnv+"="+helperBinDir(t), "NEMOCLAVE_TEST_HOME="+t.TempDir())
			host.Stderr = os.Stderr
			out, err := host.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := host.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = host.Process.Kill(); _ = host.Wait() })
			line, err := bufio.NewReader(out).ReadString('\n')
			if err != nil {
				t.Fatalf("helper host printed no pid: %v", err)
			}
			pid, err := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(line), "pid="))
			if err != nil || pid <= 0 {
				t.Fatalf("helper host printed %q", line)
			}
			if processGone(pid) {
				t.Fatalf("plugin %d is not running before the host is killed", pid)
			}
			if err := host.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			_ = host.Wait()
			waitGone(t, pid)
		})
	}
}
