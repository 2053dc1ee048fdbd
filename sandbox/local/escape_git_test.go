package local

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// F17: the agent tries every way of making a later host-side git in the
// workspace run code or read configuration from elsewhere, directly from
// inside a real sandbox and through every gateway tool; then a real git
// status runs on the host, as the workspace's owner, and must run nothing
// (no PWNED-* marker appears) and still work.

// gitAttacks are run by sh in the sandbox; each prints "WROTE <name>" when
// the write went through and "denied <name>" otherwise.
const gitAttacks = `cd /workspace
try() { if sh -c "$2" >/dev/null 2>&1; then echo "WROTE $1"; else echo "denied $1"; fi; }
G="git -c user.email=a@b -c user.name=agent"
mkdir -p evilgit && printf '[core]\n\tfsmonitor = "touch PWNED-commondir #"\n' > evilgit/config
printf '[core]\n\tfsmonitor = "touch PWNED-include #"\n' > evil.cfg
$G init -q sub && $G -C sub commit -q --allow-empty -m s && git -C sub config core.fsmonitor "touch ../PWNED-submodule #"
try commondir 'echo ../evilgit > .git/commondir'
try include 'printf "[include]\n\tpath = ../evil.cfg\n" >> .git/config'
try hooksPath 'git config core.hooksPath /workspace/evilgit'
try fsmonitor 'git config core.fsmonitor "touch PWNED-fsmonitor #"'
try attributes 'mkdir -p .git/info && echo "* filter=evil" > .git/info/attributes'
try modules 'mkdir -p .git/modules/sub && cp evilgit/config .git/modules/sub/config'
try worktrees 'mkdir -p .git/worktrees/w && echo ../../../evilgit > .git/worktrees/w/commondir'
try hook 'printf "#!/bin/sh\ntouch PWNED-hook\n" > .git/hooks/post-index-change && chmod +x .git/hooks/post-index-change'
try index 'git update-index --add --cacheinfo 160000,$(git -C sub rev-parse HEAD),sub'
try rename 'mv .git .git-old'
try remove 'rm -f .git/config'
try replace 'rm -rf .git; echo "gitdir: evilgit" > .git'
echo attacks done`

var gitAttackNames = []string{"commondir", "include", "hooksPath", "fsmonitor", "attributes", "modules", "worktrees", "hook", "index", "rename", "remove", "replace"}

// gitRepo makes ws a real repository with one commit, as the host user.
func gitRepo(t *testing.T, mode, ws string) {
	t.Helper()
	for _, args := range [][]string{
		{"init", "-q"}, {"-c", "user.email=a@b", "-c", "user.name=host", "commit", "-q", "--allow-empty", "-m", "init"},
	} {
		if out, err := hostGit(ws, mode, args...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	if err := os.WriteFile(filepath.Join(ws, "README"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := hostGit(ws, mode, "-c", "user.email=a@b", "-c", "user.name=host", "commit", "-q", "--allow-empty", "-m", "readme").CombinedOutput(); err != nil {
		t.Fatalf("git commit: %v\n%s", err, out)
	}
	chownTree(t, mode, ws)
}

// hostGit runs git in ws the way an operator would, as uid when given
// (the rootless workspace belongs to the unprivileged user: git refuses a
// repository owned by someone else).
func hostGit(ws, mode string, args ...string) *exec.Cmd {
	cmd := exec.Command("git", args...)
	cmd.Dir = ws
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + filepath.Dir(ws), "GIT_CONFIG_NOSYSTEM=1"}
	if mode == rootlessMod {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: unprivUID, Gid: unprivUID}}
	}
	return cmd
}

// assertNothingRan runs a host git status and looks for markers.
func assertNothingRan(t *testing.T, mode, ws string) {
	t.Helper()
	out, err := hostGit(ws, mode, "status", "--porcelain").CombinedOutput()
	if err != nil {
		t.Errorf("host git status failed after the attacks (the repository must stay usable): %v\n%s", err, out)
	}
	if _, err := hostGit(ws, mode, "log", "--oneline", "-1").CombinedOutput(); err != nil {
		t.Errorf("host git log failed: %v", err)
	}
	marks, _ := filepath.Glob(filepath.Join(ws, "PWNED-*"))
	more, _ := filepath.Glob(filepath.Join(ws, "*", "PWNED-*"))
	if len(marks)+len(more) > 0 {
		t.Errorf("host git ran agent code: %v %v\ngit status:\n%s", marks, more, out)
	}
}

// addSubmodule gives ws a real submodule "lib", checked out.
func addSubmodule(t *testing.T, mode, dir, ws string) {
	t.Helper()
	src := filepath.Join(dir, "libsrc")
	for _, c := range []struct {
		dir  string
		args []string
	}{
		{dir, []string{"init", "-q", src}},
		{src, []string{"-c", "user.email=a@b", "-c", "user.name=host", "commit", "-q", "--allow-empty", "-m", "lib"}},
		{ws, []string{"-c", "protocol.file.allow=always", "submodule", "--quiet", "add", src, "lib"}},
		{ws, []string{"-c", "user.email=a@b", "-c", "user.name=host", "commit", "-q", "-m", "add lib"}},
	} {
		if out, err := hostGit(c.dir, mode, c.args...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", c.args, err, out)
		}
	}
	chownTree(t, mode, ws)
}

// submoduleAttack swaps the checked-out submodule's .git for a repository
// whose fsmonitor runs a command; a host git status recurses into it.
const submoduleAttack = `
try submodule 'rm -rf lib/.git && git init -q lib && git -C lib config core.fsmonitor "touch ../PWNED-lib #"'
try submodule-gitdir 'printf "gitdir: ../evilgit\n" > lib/.git'
echo attacks done`

func TestEscape_F17_GitHostExecution(t *testing.T) {
	modes(t, func(t *testing.T, mode string) {
		dir, ws := jobDir(t, mode)
		gitRepo(t, mode, ws)
		addSubmodule(t, mode, dir, ws)
		// The policy protects nothing itself: .git is read-only by default.
		script := strings.Replace(gitAttacks, "\necho attacks done", submoduleAttack, 1)
		res := run(t, mode, dir, ws, job{Argv: []string{"/bin/sh", "-c", script}})
		if res.StartErr != "" || !strings.Contains(res.Output, "attacks done") {
			t.Fatalf("sandbox: %s %s", res.StartErr, res.Output)
		}
		for _, a := range append(gitAttackNames, "submodule", "submodule-gitdir") {
			expectLines(t, res.Output, "denied "+a)
		}
		if strings.Contains(res.Output, "WROTE") {
			t.Errorf("an attack wrote git state:\n%s", res.Output)
		}
		f := newTools(t, ws, testPolicy().Filesystem)
		for _, p := range []string{".git/commondir", ".git/config", ".git/info/attributes", ".git/modules/sub/config",
			".git/worktrees/w/commondir", ".git/hooks/post-index-change", ".git/index", ".git/HEAD"} {
			for _, wc := range writeCalls(p) {
				if text, isErr := f.call(t, wc.name, wc.args); !isErr || !strings.Contains(text, "read-only file system") {
					t.Errorf("%s %s: %v %q", wc.name, p, isErr, text)
				}
			}
		}
		assertNothingRan(t, mode, ws)
	})
}

// With git_writable an agent can commit; git's configuration and hooks stay
// protected, and commondir holds "." so it cannot be pointed elsewhere.
// The index is writable in this mode, which is why it is an opt-in (see
// docs/sandbox.md): the index attack is not asserted here.
func TestEscape_F17_GitWritableKeepsConfig(t *testing.T) {
	modes(t, func(t *testing.T, mode string) {
		dir, ws := jobDir(t, mode)
		gitRepo(t, mode, ws)
		p := testPolicy()
		p.Filesystem.GitWritable = true
		// Deleting the repository is the agent's right in this mode (the
		// protected paths survive, HEAD and objects do not): leave the
		// index and the destructive "replace" out and check the rest.
		noIndex := strings.Replace(strings.Replace(gitAttacks, "try index ", "# try index ", 1), "try replace ", "# try replace ", 1)
		script := strings.Replace(noIndex, "echo attacks done", `echo change > README && $G add README && $G commit -q -m agent && echo "committed"
echo attacks done`, 1)
		res := run(t, mode, dir, ws, job{Argv: []string{"/bin/sh", "-c", script}, Policy: p})
		if res.StartErr != "" || !strings.Contains(res.Output, "attacks done") {
			t.Fatalf("sandbox: %s %s", res.StartErr, res.Output)
		}
		expectLines(t, res.Output, "committed")
		for _, a := range []string{"commondir", "include", "hooksPath", "fsmonitor", "attributes", "modules", "worktrees", "hook", "rename", "remove"} {
			expectLines(t, res.Output, "denied "+a)
		}
		assertNothingRan(t, mode, ws)
		if out, _ := hostGit(ws, mode, "log", "--format=%an").CombinedOutput(); !strings.Contains(string(out), "agent") {
			t.Errorf("the agent's commit is missing: %s", out)
		}
	})
}
