// Package seccompdeny assembles the name-based part of the sandbox's
// seccomp filter (confine.DeniedSyscalls → EPERM, everything else allowed)
// with go-seccomp-bpf. It is used at generation time only: confine carries
// the result as data (seccomp_deny_gen.go), so the small init stages that
// link confine do not pay for go-seccomp-bpf's syscall tables, whose
// package initialisation built maps for every architecture at every
// sandbox start.
package seccompdeny

import (
	seccomp "github.com/elastic/go-seccomp-bpf"
	"golang.org/x/net/bpf"
)

// Assemble returns the deny list as raw BPF: names return EPERM, every
// other syscall is allowed.
func Assemble(names []string) ([]bpf.RawInstruction, error) {
	p := seccomp.Policy{
		DefaultAction: seccomp.ActionAllow,
		Syscalls:      []seccomp.SyscallGroup{{Action: seccomp.ActionErrno, Names: names}},
	}
	deny, err := p.Assemble()
	if err != nil {
		return nil, err
	}
	return bpf.Assemble(deny)
}
