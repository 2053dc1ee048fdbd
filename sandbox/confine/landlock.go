package confine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/nemoclave/nemoclave/policy"

	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/sys/unix"
)

// Landlock is applied to the one OS thread that spawns confined processes
// (the local init stage's spawner, the in-pod supervisor's fork thread, a
// plugin box's init) after pivot_root, so every rule names a path as the
// confined process sees it. The ruleset handles every filesystem right the
// chosen ABI knows, TCP connect (limited to given ports) and, from ABI 6,
// the abstract-unix-socket and signal scopes.
//
// Strictness: the policy's landlock.min_abi (DefaultMinLandlockABI when 0)
// is a floor. A kernel below it refuses the sandbox unless the policy set
// landlock.best_effort, in which case the sandbox runs with whatever the
// kernel offers (and says so on stderr).

// highestKnownABI is the newest ABI whose rights this package uses.
const highestKnownABI = 7

// DefaultMinLandlockABI is the oldest Landlock accepted when a policy does
// not say: ABI 6 is the first that scopes abstract unix sockets and
// signals, without which P2 and P3 rest on namespaces alone.
const DefaultMinLandlockABI = 6

// Access sets for PathRule.
const (
	// FSRead reads, lists and executes beneath a path.
	FSRead = ll.AccessFSExecute | ll.AccessFSReadFile | ll.AccessFSReadDir
	// FSAll is every right: write, create, remove, rename too.
	FSAll = ^uint64(0)
	// FSDevice reads, writes and ioctls a device node.
	FSDevice = ll.AccessFSReadFile | ll.AccessFSWriteFile | ll.AccessFSTruncate | ll.AccessFSIoctlDev

	fileMask = ll.AccessFSExecute | ll.AccessFSWriteFile | ll.AccessFSReadFile | ll.AccessFSTruncate | ll.AccessFSIoctlDev
)

// DevNodes are the device nodes every confined view offers.
var DevNodes = []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"}

func handledFS(abi int) uint64 {
	var a uint64 = (ll.AccessFSMakeSym << 1) - 1 // ABI 1: execute … make_sym
	if abi >= 2 {
		a |= ll.AccessFSRefer
	}
	if abi >= 3 {
		a |= ll.AccessFSTruncate
	}
	if abi >= 5 {
		a |= ll.AccessFSIoctlDev
	}
	return a
}

// LandlockPlan is the ABI decision, made before anything is applied so an
// unacceptable kernel is reported as a clear start error.
type LandlockPlan struct {
	ABI     int    // ABI to use; 0 means none (best effort on a kernel without Landlock)
	Warning string // printed to stderr when applied; empty at full strength
}

// PlanLandlock decides the ABI from a policy's min_abi and best_effort.
func PlanLandlock(minABI int, bestEffort bool) (LandlockPlan, error) {
	if minABI == 0 {
		minABI = DefaultMinLandlockABI
	}
	kernel, err := ll.LandlockGetABIVersion()
	if err != nil {
		kernel = 0
	}
	if kernel < minABI {
		if !bestEffort {
			return LandlockPlan{}, fmt.Errorf("landlock: the kernel offers ABI %d but the policy requires at least ABI %d; upgrade the kernel (and enable lsm=landlock), lower landlock.min_abi, or set landlock.best_effort = true to accept weaker isolation", kernel, minABI)
		}
		w := fmt.Sprintf("nemoclave: WARNING: Landlock ABI %d is below the policy minimum %d; running best effort as the policy allows", kernel, minABI)
		if kernel == 0 {
			w = "nemoclave: WARNING: Landlock unavailable; running without it because the policy set best_effort"
		}
		return LandlockPlan{ABI: kernel, Warning: w}, nil
	}
	return LandlockPlan{ABI: min(kernel, highestKnownABI)}, nil
}

// PathRule grants Access beneath Path (on a file, only the file rights).
type PathRule struct {
	Path   string
	Access uint64
}

// PolicyRules derives a sandbox's path rules from its policy plus what
// every sandbox needs (/proc read-only, the device nodes, /dev/pts,
// /dev/shm).
func PolicyRules(p *policy.Policy) []PathRule {
	rules := []PathRule{{"/proc", ll.AccessFSReadFile | ll.AccessFSReadDir}, {"/dev/pts", FSDevice | ll.AccessFSReadDir}, {"/dev/ptmx", FSDevice}, {"/dev/shm", FSAll}}
	for _, n := range DevNodes {
		rules = append(rules, PathRule{n, FSDevice})
	}
	for _, path := range p.Filesystem.ReadOnly {
		rules = append(rules, PathRule{filepath.Clean(path), FSRead})
	}
	for _, path := range p.Filesystem.ReadWrite {
		rules = append(rules, PathRule{filepath.Clean(path), FSAll})
	}
	return rules
}

// ApplyLandlock restricts the calling thread (and everything it spawns) to
// rules and, from ABI 4, TCP connect to ports only. Rules whose path does
// not exist are skipped: there is nothing to grant.
func ApplyLandlock(plan LandlockPlan, rules []PathRule, ports []int) error {
	if plan.ABI == 0 {
		return nil
	}
	handled := handledFS(plan.ABI)
	attr := ll.RulesetAttr{HandledAccessFS: handled}
	if plan.ABI >= 4 {
		attr.HandledAccessNet = ll.AccessNetConnectTCP
	}
	if plan.ABI >= 6 {
		attr.Scoped = ll.ScopeAbstractUnixSocket | ll.ScopeSignal
	}
	rfd, err := ll.LandlockCreateRuleset(&attr, 0)
	if err != nil {
		return fmt.Errorf("landlock: create ruleset: %w", err)
	}
	defer unix.Close(rfd)
	for _, r := range rules {
		fd, err := unix.Open(r.Path, unix.O_PATH|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) {
			continue // not in this sandbox's view: nothing to grant
		}
		if err != nil {
			return fmt.Errorf("landlock: open %s: %w", r.Path, err)
		}
		access := r.Access & handled
		var st unix.Stat_t
		if unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
			access &= fileMask
		}
		err = ll.LandlockAddPathBeneathRule(rfd, &ll.PathBeneathAttr{AllowedAccess: access, ParentFd: fd}, 0)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("landlock: rule for %s: %w", r.Path, err)
		}
	}
	if plan.ABI >= 4 {
		for _, p := range ports {
			if err := ll.LandlockAddNetPortRule(rfd, &ll.NetPortAttr{AllowedAccess: ll.AccessNetConnectTCP, Port: uint64(p)}, 0); err != nil {
				return fmt.Errorf("landlock: allow connect to port %d: %w", p, err)
			}
		}
	}
	if err := ll.LandlockRestrictSelf(rfd, 0); err != nil {
		return fmt.Errorf("landlock: restrict: %w", err)
	}
	if plan.Warning != "" {
		fmt.Fprintln(os.Stderr, plan.Warning)
	}
	return nil
}
