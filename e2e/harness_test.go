package e2e

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// repoRoot is the repository root (this file is in e2e/).
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
	// builtBinDir is binDir when this process built it (in the temp dir);
	// TestMain removes it.
	builtBinDir string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if builtBinDir != "" {
		_ = os.RemoveAll(builtBinDir)
	}
	os.Exit(code)
}

// bins returns a directory holding nemoclave and every plugin: the
// Makefile's bin/ ($NEMOCLAVE_BIN_DIR) when it is set, else a fresh build.
func bins(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if d := os.Getenv("NEMOCLAVE_BIN_DIR"); d != "" {
			if _, err := os.Stat(filepath.Join(d, "nemoclave")); err == nil {
				binDir = d
				return
			}
		}
		dir, err := os.MkdirTemp("", "nemoclave-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		root := repoRoot(t)
		cmd := exec.Command("make", "-C", root, "build", "BIN="+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			_ = os.RemoveAll(dir)
			buildErr = err
			binDir = string(out)
			return
		}
		binDir, builtBinDir = dir, dir
	})
	if buildErr != nil {
		t.Fatalf("build: %v\n%s", buildErr, binDir)
	}
	return binDir
}

// env is one isolated nemoclave installation: its own home and daemon.
type env struct {
	t    *testing.T
	bin  string
	home string
	vars []string
}

func newEnv(t *testing.T, extra ...string) *env {
	t.Helper()
	e := &env{t: t, bin: bins(t), home: t.TempDir()}
	e.vars = append(os.Environ(), "NEMOCLAVE_HOME="+e.home, "NEMOCLAVE_BIN_DIR="+e.bin)
	e.vars = append(e.vars, extra...)
	t.Cleanup(func() {
		// Stop the daemon even when the test failed half way.
		e.run(context.Background(), "daemon", "stop")
	})
	return e
}

type result struct {
	stdout, stderr string
	code           int
}

func (e *env) run(ctx context.Context, args ...string) result {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(e.bin, "nemoclave"), args...)
	cmd.Env = e.vars
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
		errb.WriteString(err.Error())
	}
	return result{out.String(), errb.String(), code}
}

// must runs a command that has to succeed.
func (e *env) must(args ...string) string {
	e.t.Helper()
	r := e.run(context.Background(), args...)
	if r.code != 0 {
		e.t.Fatalf("nemoclave %s: exit %d\nstdout:\n%s\nstderr:\n%s\ndaemon log:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr, e.daemonLog())
	}
	return r.stdout
}

func (e *env) daemonLog() string {
	b, _ := os.ReadFile(filepath.Join(e.home, "logs", "daemon.log"))
	p, _ := os.ReadFile(filepath.Join(e.home, "logs", "plugins.log"))
	out := string(b) + "\n--- plugins.log (tail) ---\n" + tail(string(p), 40)
	// A run's plugins log to each sandbox's own plugin log.
	sbs, _ := filepath.Glob(filepath.Join(e.home, "logs", "*", "plugins.log"))
	for _, f := range sbs {
		p, _ := os.ReadFile(f)
		out += "\n--- " + filepath.Base(filepath.Dir(f)) + "/plugins.log (tail) ---\n" + tail(string(p), 40)
	}
	return out
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// copyDir copies a directory tree (the blueprint examples write their
// workspace beside themselves).
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if fi.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, fi.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}

// processesMentioning lists pids (other than skip) whose command line or
// environment contains s: what a sandbox or plugin of this env would leave.
func processesMentioning(s string, skip int) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		pid := ent.Name()
		if pid[0] < '0' || pid[0] > '9' || pid == strconv.Itoa(skip) || pid == strconv.Itoa(os.Getpid()) {
			continue
		}
		cmdline, _ := os.ReadFile("/proc/" + pid + "/cmdline")
		environ, _ := os.ReadFile("/proc/" + pid + "/environ")
		if bytes.Contains(cmdline, []byte(s)) || bytes.Contains(environ, []byte(s)) {
			out = append(out, pid+" "+strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
	return out
}

// freeAddr returns a loopback address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
