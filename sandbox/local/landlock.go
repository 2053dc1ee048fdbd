package local

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/sys/unix"
)

// Landlock is applied by the init stage to the one OS thread that spawns
// sandboxed processes (see spawner), after pivot_root, so every rule names a
// path as the agent sees it. The ruleset handles every filesystem right the
// chosen ABI knows, TCP connect (limited to the gateway ports) and, from
// ABI 6, the abstract-unix-socket and signal scopes.
//
// Strictness: the policy's landlock.min_abi (DefaultMinLandlockABI when 0)
// is a floor. A kernel below it refuses the sandbox unless the policy set
// landlock.best_effort, in which case the sandbox runs with whatever the
// kernel offers (and says so in the agent log).

// highestKnownABI is the newest ABI whose rights this driver uses.
const highestKnownABI = 7

const (
	fsRead   = ll.AccessFSExecute | ll.AccessFSReadFile | ll.AccessFSReadDir
	fileMask = ll.AccessFSExecute | ll.AccessFSWriteFile | ll.AccessFSReadFile | ll.AccessFSTruncate | ll.AccessFSIoctlDev
)

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

// landlockPlan is the ABI decision, made before anything is applied so an
// unacceptable kernel is reported as a clear start error.
type landlockPlan struct {
	abi     int // ABI to use; 0 means none (best effort on a kernel without Landlock)
	warning string
}

func planLandlock(minABI int, bestEffort bool) (landlockPlan, error) {
	if minABI == 0 {
		minABI = DefaultMinLandlockABI
	}
	kernel, err := ll.LandlockGetABIVersion()
	if err != nil {
		kernel = 0
	}
	if kernel < minABI {
		if !bestEffort {
			return landlockPlan{}, fmt.Errorf("landlock: the kernel offers ABI %d but the policy requires at least ABI %d; upgrade the kernel (and enable lsm=landlock), lower landlock.min_abi, or set landlock.best_effort = true to accept weaker isolation", kernel, minABI)
		}
		w := fmt.Sprintf("nemoclave: WARNING: Landlock ABI %d is below the policy minimum %d; running best effort as the policy allows", kernel, minABI)
		if kernel == 0 {
			w = "nemoclave: WARNING: Landlock unavailable; running without it because the policy set best_effort"
		}
		return landlockPlan{abi: kernel, warning: w}, nil
	}
	return landlockPlan{abi: min(kernel, highestKnownABI)}, nil
}

type fsRule struct {
	path   string
	access uint64
}

// landlockRules derives the path rules from the policy plus what every
// sandbox needs (/proc read-only, the device nodes, /dev/pts, /dev/shm).
func landlockRules(cfg *initConfig) []fsRule {
	all := ^uint64(0)
	dev := uint64(ll.AccessFSReadFile | ll.AccessFSWriteFile | ll.AccessFSTruncate | ll.AccessFSIoctlDev)
	rules := []fsRule{{"/proc", ll.AccessFSReadFile | ll.AccessFSReadDir}, {"/dev/pts", dev | ll.AccessFSReadDir}, {"/dev/ptmx", dev}, {"/dev/shm", all},
		{binaryDir, fsRead}}
	for _, n := range devNodes {
		rules = append(rules, fsRule{n, dev})
	}
	for _, p := range cfg.Policy.Filesystem.ReadOnly {
		rules = append(rules, fsRule{filepath.Clean(p), fsRead})
	}
	for _, p := range cfg.Policy.Filesystem.ReadWrite {
		rules = append(rules, fsRule{filepath.Clean(p), all})
	}
	return rules
}

// applyLandlock restricts the calling thread (and everything it spawns).
func applyLandlock(plan landlockPlan, cfg *initConfig, ports []int) error {
	if plan.abi == 0 {
		return nil
	}
	handled := handledFS(plan.abi)
	attr := ll.RulesetAttr{HandledAccessFS: handled}
	if plan.abi >= 4 {
		attr.HandledAccessNet = ll.AccessNetConnectTCP
	}
	if plan.abi >= 6 {
		attr.Scoped = ll.ScopeAbstractUnixSocket | ll.ScopeSignal
	}
	rfd, err := ll.LandlockCreateRuleset(&attr, 0)
	if err != nil {
		return fmt.Errorf("landlock: create ruleset: %w", err)
	}
	defer unix.Close(rfd)
	for _, r := range landlockRules(cfg) {
		fd, err := unix.Open(r.path, unix.O_PATH|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) {
			continue // not in this sandbox's view: nothing to grant
		}
		if err != nil {
			return fmt.Errorf("landlock: open %s: %w", r.path, err)
		}
		access := r.access & handled
		var st unix.Stat_t
		if unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
			access &= fileMask
		}
		err = ll.LandlockAddPathBeneathRule(rfd, &ll.PathBeneathAttr{AllowedAccess: access, ParentFd: fd}, 0)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("landlock: rule for %s: %w", r.path, err)
		}
	}
	if plan.abi >= 4 {
		for _, p := range ports {
			if err := ll.LandlockAddNetPortRule(rfd, &ll.NetPortAttr{AllowedAccess: ll.AccessNetConnectTCP, Port: uint64(p)}, 0); err != nil {
				return fmt.Errorf("landlock: allow connect to gateway port %d: %w", p, err)
			}
		}
	}
	if err := ll.LandlockRestrictSelf(rfd, 0); err != nil {
		return fmt.Errorf("landlock: restrict: %w", err)
	}
	if plan.warning != "" {
		fmt.Fprintln(os.Stderr, plan.warning)
	}
	return nil
}
