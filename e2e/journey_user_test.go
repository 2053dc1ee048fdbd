package e2e

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestJourney_OrdinaryUserAfterSetup: as root, create a user with useradd,
// run `nemoclave setup --user NAME`, then the user runs the quickstart
// (binaries and checkout under /tmp) with every protection, resource limits
// included (the blueprint does not opt out).
func TestJourney_OrdinaryUserAfterSetup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("creating a user and delegating cgroups to it needs root; run as root (CI does)")
	}
	if _, err := exec.LookPath("useradd"); err != nil {
		t.Skip("useradd is not installed")
	}
	bin := tmpBins(t)
	name := fmt.Sprintf("ncj%06d", rand.IntN(1000000))
	if out, err := exec.Command("useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name).CombinedOutput(); err != nil {
		t.Fatalf("useradd: %v\n%s", err, out)
	}
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	base, err := os.MkdirTemp("/tmp", "nemoclave-journey-user-")
	if err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(base, "home")
	dir := filepath.Join(base, "quickstart")
	copyDir(t, filepath.Join(repoRoot(t), "examples", "quickstart"), dir)
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	_ = filepath.Walk(base, func(p string, _ os.FileInfo, _ error) error { return os.Lchown(p, uid, gid) })
	_ = os.Chmod(base, 0o755)

	asUser := func(args ...string) (string, string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, filepath.Join(bin, "nemoclave"), args...)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + home, "USER=" + name, "NEMOCLAVE_HOME=" + home, "NEMOCLAVE_BIN_DIR=" + bin}
		cmd.Dir = base
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		return out.String(), errb.String(), err
	}
	t.Cleanup(func() {
		asUser("daemon", "stop")
		os.RemoveAll(base)
		removeUserCgroups(uid)
		exec.Command("userdel", name).Run()
	})

	out, err := exec.Command(filepath.Join(bin, "nemoclave"), "setup", "--user", name).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "delegated") {
		t.Fatalf("setup --user %s: %v\n%s", name, err, out)
	}
	stdout, stderr, err := asUser("run", filepath.Join(dir, "blueprint.hcl"))
	if err != nil || !strings.Contains(stdout, "→ list_files") {
		log, _ := os.ReadFile(filepath.Join(home, "logs", "daemon.log"))
		t.Fatalf("the quickstart as %s (uid %d): %v\nstdout:\n%s\nstderr:\n%s\ndaemon log:\n%s", name, uid, err, stdout, stderr, log)
	}
	if strings.Contains(stderr, "without cgroup limits") || strings.Contains(stdout, "without cgroup limits") {
		t.Errorf("the sandbox ran without resource limits:\n%s%s", stdout, stderr)
	}
}

// removeUserCgroups removes what setup and the user's sandboxes left under
// /nemoclave-users/<uid> in every hierarchy (deepest first; busy ones stay).
func removeUserCgroups(uid int) {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*/nemoclave-users/" + strconv.Itoa(uid))
	roots2, _ := filepath.Glob("/sys/fs/cgroup/nemoclave-users/" + strconv.Itoa(uid))
	for _, r := range append(roots, roots2...) {
		var dirs []string
		_ = filepath.Walk(r, func(p string, fi os.FileInfo, err error) error {
			if err == nil && fi.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			_ = syscall.Rmdir(dirs[i])
		}
	}
}
