package local

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	MaybeInit()
	if helperMain() {
		return
	}
	// A provider key in the supervisor's environment: N19 checks it never
	// reaches a sandbox.
	os.Setenv("OPENAI_API_KEY", testCanary)
	os.Setenv("SSH_AUTH_SOCK", "/tmp/ssh-agent.sock")
	// Race-instrumented children (init stages, probes, the rootless
	// helper) would otherwise each sleep a second at exit.
	os.Setenv("GORACE", "atexit_sleep_ms=0")
	code := m.Run()
	testCleanup()
	os.Exit(code)
}
