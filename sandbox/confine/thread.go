package confine

import (
	"errors"

	"golang.org/x/sys/unix"

	"github.com/nemoclave/nemoclave/policy"
)

// Thread is the entry point for a supervisor that runs inside a sandbox it
// did not build itself (the Kubernetes driver's in-pod supervisor): it gives
// the calling OS thread exactly what the local init stage's spawner thread
// gets — no capabilities and no_new_privs, Landlock from the policy (connect
// limited to ports) and the seccomp filter — so that processes forked from
// that thread inherit the same confinement as a local sandbox's agent.
//
// The caller must hold runtime.LockOSThread for the rest of the thread's
// life and fork the agent from it (syscall.ForkExec); Thread refuses to
// restrict the thread-group leader, whose credentials judge signals and
// /proc accesses aimed at the whole process. extra adds path rules (the
// local driver's binary directory). warning is non-empty when the
// policy allowed a weaker Landlock than its minimum.
func Thread(p *policy.Policy, ports []int, extra ...PathRule) (warning string, err error) {
	if p == nil {
		return "", errors.New("confine: no policy: a sandbox never starts without an explicit policy")
	}
	if err := p.Validate(); err != nil {
		return "", err
	}
	if unix.Gettid() == unix.Getpid() {
		return "", errors.New("confine: refusing to restrict the thread-group leader; lock another OS thread and call Confine from it")
	}
	plan, err := PlanLandlock(p.Landlock.MinABI, p.Landlock.BestEffort)
	if err != nil {
		return "", err
	}
	filter, err := BuildSeccomp()
	if err != nil {
		return "", err
	}
	if err := DropPrivileges(); err != nil {
		return "", err
	}
	if err := ApplyLandlock(plan, append(PolicyRules(p), extra...), ports); err != nil {
		return "", err
	}
	if err := LoadSeccomp(filter); err != nil {
		return "", err
	}
	return plan.Warning, nil
}
