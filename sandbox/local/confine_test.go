package local

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// TestConfineUnprivileged runs Confine the way the Kubernetes driver's
// in-pod supervisor does — as a non-root uid with no capabilities and no
// namespaces of its own — and checks that a shell forked from the confined
// thread is under no_new_privs, seccomp and Landlock.
func TestConfineUnprivileged(t *testing.T) {
	testSetup(t)
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to start the probe as an unprivileged uid")
	}
	cmd := exec.Command(probePath, "confine")
	cmd.Env = []string{probeEnv + "=1", "GORACE=atexit_sleep_ms=0"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: unprivUID, Gid: unprivUID}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Logf("%s", out)
	expectLines(t, string(out), "NoNewPrivs:\t1", "Seccomp:\t2", "CapEff:\t0000000000000000",
		"confined: read /etc", "confined: write denied", "confined: unshare denied", "confine: ok")
	for _, bad := range []string{"WROTE", "UNSHARE worked"} {
		if strings.Contains(string(out), bad) {
			t.Errorf("confinement did not hold (%s)", bad)
		}
	}
}
