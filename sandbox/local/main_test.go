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
	code := m.Run()
	testCleanup()
	os.Exit(code)
}
