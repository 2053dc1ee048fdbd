package pluginbox_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/nemoclave/nemoclave/sandbox/pluginbox"
)

// attackBin is the test plugin (testdata/attackplugin), built once.
var attackBin string

func TestMain(m *testing.M) {
	// This test binary is the boxes' launcher: re-executed, it becomes
	// the init stage and then the plugin.
	pluginbox.MaybeInit()
	dir, err := os.MkdirTemp("", "pluginbox-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Readable by every uid: the rootless runs start the box as nobody.
	_ = os.Chmod(dir, 0o755)
	attackBin = filepath.Join(dir, "attackplugin")
	build := exec.Command("go", "build", "-o", attackBin, "./testdata/attackplugin")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	// A rootless run (a compiled test binary started as an ordinary user,
	// who may have no Go toolchain) names a prebuilt attack plugin.
	if prebuilt := os.Getenv("PLUGINBOX_TEST_ATTACK_PLUGIN"); prebuilt != "" {
		build = exec.Command("cp", prebuilt, attackBin)
	}
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build the attack plugin:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	// A provider key in the host's environment: PL5 checks no plugin
	// sees it.
	os.Setenv("OPENAI_API_KEY", canary)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const canary = "sk-canary-pluginbox-PL5"
