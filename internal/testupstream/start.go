package testupstream

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	buildMu   sync.Mutex
	buildDir  string
	buildPath string
	users     int
)

// Binary builds cmd/testupstream and returns its path. The binary is
// shared by the tests that overlap (parallel ones) and removed, with its
// temp dir, when the last of them ends: a later test builds it again (a
// link from the build cache).
func Binary(t testing.TB) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if buildPath == "" {
		dir, err := os.MkdirTemp("", "testupstream-")
		if err != nil {
			t.Fatalf("build testupstream: %v", err)
		}
		path := filepath.Join(dir, "testupstream")
		out, err := exec.Command("go", "build", "-o", path, "github.com/nemoclave/nemoclave/internal/testupstream/cmd/testupstream").CombinedOutput()
		if err != nil {
			_ = os.RemoveAll(dir)
			t.Fatalf("build testupstream: %v", &buildError{out: string(out), err: err})
		}
		buildDir, buildPath = dir, path
	}
	users++
	t.Cleanup(func() {
		buildMu.Lock()
		defer buildMu.Unlock()
		if users--; users == 0 {
			_ = os.RemoveAll(buildDir)
			buildDir, buildPath = "", ""
		}
	})
	return buildPath
}

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string { return e.err.Error() + ": " + e.out }

// Start runs the stand-in as a separate process accepting only key and
// returns its base URL (http://127.0.0.1:port, no /v1). The process is
// killed when the test ends. extra are further flags (-script file).
func Start(t testing.TB, key string, extra ...string) string {
	t.Helper()
	cmd := exec.Command(Binary(t), append([]string{"-addr", "127.0.0.1:0", "-key", key}, extra...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start testupstream: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("testupstream did not report its address: %v", err)
	}
	return strings.TrimSpace(strings.TrimPrefix(line, "listening on "))
}
