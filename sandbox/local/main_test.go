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
	code := m.Run()
	testCleanup()
	os.Exit(code)
}
