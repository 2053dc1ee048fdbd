package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/nemoclave/nemoclave/sandbox"
	"github.com/nemoclave/nemoclave/sandbox/confine"
)

// Each sandbox has a directory under the driver's state root:
//
//	<root>/<name>/state.json   record: spec, info, init pid, cgroups
//	<root>/<name>/exit.json    written by the init stage when the agent exits
//	<root>/<name>/agent.log    the agent's stdout and stderr
//	<root>/<name>/rootfs/      empty mount point for the sandbox root
//
// state.json is replaced atomically (write a temporary file, rename), so a
// supervisor crash leaves the old or the new record, never half of one. It
// is not fsynced: the record describes processes that do not survive a
// power loss anyway, and an fsync per lifecycle step costs more than the
// rest of a sandbox start on slow disks.

type record struct {
	Spec sandbox.Spec `json:"spec"`
	Info sandbox.Info `json:"info"`
	// InitPid and InitStart (clock ticks since boot, /proc/<pid>/stat field
	// 22) identify the init process across supervisor restarts without
	// trusting a recycled pid.
	InitPid   int             `json:"init_pid,omitempty"`
	InitStart uint64          `json:"init_start,omitempty"`
	Cgroup    *confine.Cgroup `json:"cgroup,omitempty"`
	// Placeholders are host paths the driver created in the workspace so a
	// missing protected path could be mounted read-only; Delete removes
	// them if they are still empty.
	Placeholders []string `json:"placeholders,omitempty"`
}

func (d *Driver) dir(name string) string { return filepath.Join(d.cfg.StateRoot, name) }

func (d *Driver) save(r *record) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	dir := d.dir(r.Spec.Name)
	tmp, err := os.CreateTemp(dir, ".state-*.json")
	if err != nil {
		return fmt.Errorf("save sandbox state: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("save sandbox state: %w", err)
	}
	tmp.Close()
	if err := os.Rename(tmp.Name(), filepath.Join(dir, "state.json")); err != nil {
		return fmt.Errorf("save sandbox state: %w", err)
	}
	return nil
}

func (d *Driver) load(name string) (*record, error) {
	b, err := os.ReadFile(filepath.Join(d.dir(name), "state.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", sandbox.ErrNotFound, name)
	}
	if err != nil {
		return nil, fmt.Errorf("read sandbox state: %w", err)
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("sandbox %s: state.json is corrupt (%w); delete %s to forget it", name, err, d.dir(name))
	}
	return &r, nil
}

func (d *Driver) readExit(name string) (*exitRecord, bool) {
	b, err := os.ReadFile(filepath.Join(d.dir(name), "exit.json"))
	if err != nil {
		return nil, false
	}
	var e exitRecord
	if json.Unmarshal(b, &e) != nil {
		return nil, false
	}
	return &e, true
}

// procStart returns the start time of pid (field 22 of /proc/<pid>/stat,
// in clock ticks), or 0 if it does not exist or is a zombie.
//
// Parsed here rather than with prometheus/procfs (as sdk/plugin does): this
// package is also the sandbox init stage, and every package it links runs
// its initialisers at every sandbox start. procfs's cost 892 allocations
// (96 KiB) and 0.7-10 ms per start at load 24 (GODEBUG=inittrace=1), the
// largest of the init stage's 47 initialisers; TestProcStartMatchesProcfs
// checks this parse against procfs.
func procStart(pid int) uint64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name (field 2) is in parentheses and may itself hold
	// spaces and parentheses: the fields after it start at the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 || f[0] == "Z" {
		return 0 // f[0] is field 3 (state), f[19] field 22 (starttime)
	}
	v, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0
	}
	return v
}
