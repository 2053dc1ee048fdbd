package local

import (
	"os"
)

const probeEnv = "NEMOCLAVE_TEST_PROBE"

// probeMain runs inside a sandbox: os.Args[1:] is one operation. It prints
// "<op>: ok" or "<op>: errno=<NAME>" and exits 0, so a sandbox script can
// run many probes and the test reads every answer from the agent log.
func probeMain() bool {
	return os.Getenv(probeEnv) != ""
}
