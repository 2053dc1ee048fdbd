package local

import (
	"github.com/nemoclave/nemoclave/policy"
	"github.com/nemoclave/nemoclave/sandbox/confine"
)

// Confine applies a local sandbox's confinement to the calling OS thread;
// see confine.Thread, where it now lives (kept so callers of this driver's
// API keep compiling).
func Confine(p *policy.Policy, ports []int) (warning string, err error) {
	return confine.Thread(p, ports, confine.PathRule{Path: binaryDir, Access: confine.FSRead})
}

// CheckEnvName refuses variables the driver owns and names that look like
// credentials; see confine.CheckEnvName.
func CheckEnvName(k string) error { return confine.CheckEnvName(k) }

// ListenerEnv returns the variables that point the agent at the gateway
// listeners on 127.0.0.1, keyed by sandbox.Listener* name.
func ListenerEnv(ports map[string]int) []string { return listenerEnv(ports) }

// SandboxPath is the PATH every sandboxed process starts with.
const SandboxPath = sandboxPath

// BinaryPath is where the nemoclave binary is inside every local sandbox;
// its directory is first on SandboxPath, so `nemoclave agent` resolves.
const BinaryPath = binaryDir + "/nemoclave"
