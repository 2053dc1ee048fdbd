package local

import (
	"errors"

	"github.com/nemoclave/nemoclave/blueprints/policy"
	"golang.org/x/sys/unix"
)

// Confine is the entry point for a supervisor that runs inside a sandbox it
// did not build itself (the Kubernetes driver's in-pod supervisor): it gives
// the calling OS thread exactly what the init stage's spawner thread gets —
// no capabilities and no_new_privs, Landlock from the policy (connect limited
// to ports) and the seccomp filter — so that processes forked from that
// thread inherit the same confinement as a local sandbox's agent.
//
// The caller must hold runtime.LockOSThread for the rest of the thread's
// life and fork the agent from it (syscall.ForkExec); Confine refuses to
// restrict the thread-group leader, whose credentials judge signals and
// /proc accesses aimed at the whole process. warning is non-empty when the
// policy allowed a weaker Landlock than its minimum.
func Confine(p *policy.Policy, ports []int) (warning string, err error) {
	if p == nil {
		return "", errors.New("confine: no policy: a sandbox never starts without an explicit policy")
	}
	if err := p.Validate(); err != nil {
		return "", err
	}
	if unix.Gettid() == unix.Getpid() {
		return "", errors.New("confine: refusing to restrict the thread-group leader; lock another OS thread and call Confine from it")
	}
	plan, err := planLandlock(p.Landlock.MinABI, p.Landlock.BestEffort)
	if err != nil {
		return "", err
	}
	filter, err := buildSeccomp()
	if err != nil {
		return "", err
	}
	if err := dropPrivileges(); err != nil {
		return "", err
	}
	if err := applyLandlock(plan, &initConfig{Policy: p}, ports); err != nil {
		return "", err
	}
	if err := loadSeccomp(filter); err != nil {
		return "", err
	}
	return plan.warning, nil
}

// CheckEnvName refuses variables the driver owns and names that look like
// credentials; drivers other than local apply the same rule to Spec.Env.
func CheckEnvName(k string) error { return checkEnvName(k) }

// ListenerEnv returns the variables that point the agent at the gateway
// listeners on 127.0.0.1, keyed by sandbox.Listener* name.
func ListenerEnv(ports map[string]int) []string { return listenerEnv(ports) }

// SandboxPath is the PATH every sandboxed process starts with.
const SandboxPath = sandboxPath

// BinaryPath is where the nemoclave binary is inside every local sandbox;
// its directory is first on SandboxPath, so `nemoclave agent` resolves.
const BinaryPath = binaryDir + "/nemoclave"
