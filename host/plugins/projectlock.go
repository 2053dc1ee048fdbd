package plugins

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/hashicorp/go-version"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"

	"github.com/nemoclave/nemoclave/internal/pluginsource"
)

// ProjectLockName is the per-project lock file beside a blueprint, modelled
// on Terraform's .terraform.lock.hcl: for every plugin the blueprint uses
// other than builtins (which ship with nemoclave itself), the version
// chosen and the hashes trusted. `nemoclave init` writes it; validate and
// every launch check it. Commit it with the blueprint.
const ProjectLockName = ".nemoclave.lock.hcl"

// DevOverridesName, in $NEMOCLAVE_HOME, maps plugin sources to local
// binaries for plugin authors (Terraform's dev_overrides). An overridden
// plugin skips the lock and version checks, with a warning every time.
const DevOverridesName = "dev_overrides.hcl"

// Pin is what the project lock fixes for one launch.
type Pin struct {
	// Version is the locked version of an installed address.
	Version string
	// Hash is the locked hash (sha256:… or h1:…).
	Hash string
	// DevOverride, when set, is the binary to run instead, unchecked.
	DevOverride string
}

// LockedPlugin is one plugin block of the project lock.
type LockedPlugin struct {
	Source      string   `hcl:"source,label"`
	Version     string   `hcl:"version,optional"`
	Constraints string   `hcl:"constraints,optional"`
	Hashes      []string `hcl:"hashes"`
}

// ProjectLock is a parsed .nemoclave.lock.hcl.
type ProjectLock struct {
	// Path is the lock file; Exists says whether it was on disk.
	Path   string
	Exists bool
	// Plugins is keyed by LockKey.
	Plugins map[string]*LockedPlugin
}

type projectLockFile struct {
	Plugins []*LockedPlugin `hcl:"plugin,block"`
}

// ReadProjectLock reads the lock file of the blueprint directory dir; a
// missing file is an empty lock with Exists false.
func ReadProjectLock(dir string) (*ProjectLock, error) {
	path := filepath.Join(dir, ProjectLockName)
	l := &ProjectLock{Path: path, Plugins: map[string]*LockedPlugin{}}
	src, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return nil, err
	}
	l.Exists = true
	f, diags := hclparse.NewParser().ParseHCL(src, path)
	var lf projectLockFile
	if !diags.HasErrors() {
		diags = gohcl.DecodeBody(f.Body, nil, &lf)
	}
	if diags.HasErrors() {
		return nil, fmt.Errorf("%s is not a valid lock file (%s); delete it and run `nemoclave init`", path, diags.Error())
	}
	for _, p := range lf.Plugins {
		l.Plugins[p.Source] = p
	}
	return l, nil
}

// Write replaces the lock file atomically.
func (l *ProjectLock) Write() error {
	f := hclwrite.NewEmptyFile()
	body := f.Body()
	keys := make([]string, 0, len(l.Plugins))
	for k := range l.Plugins {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		p := l.Plugins[k]
		if i > 0 {
			body.AppendNewline()
		}
		b := body.AppendNewBlock("plugin", []string{k}).Body()
		if p.Version != "" {
			b.SetAttributeValue("version", cty.StringVal(p.Version))
		}
		if p.Constraints != "" {
			b.SetAttributeValue("constraints", cty.StringVal(p.Constraints))
		}
		hashes := make([]cty.Value, len(p.Hashes))
		for j, h := range p.Hashes {
			hashes[j] = cty.StringVal(h)
		}
		b.SetAttributeValue("hashes", cty.ListVal(hashes))
	}
	head := "# This file is maintained by \"nemoclave init\": it pins each plugin the\n" +
		"# blueprint uses (builtins excepted) to a version and checksum, checked\n" +
		"# by validate and before every launch. Commit it with the blueprint.\n\n"
	if err := writeAtomic(l.Path, append([]byte(head), f.Bytes()...), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", l.Path, err)
	}
	l.Exists = true
	return nil
}

// LockKey is how a source is keyed in the lock of blueprint directory dir:
// the address for installed plugins; for paths, the path relative to dir
// ("./bin/x") when it is inside dir, so the lock travels with the project.
// Builtins and mcp return "" (not locked).
func LockKey(dir, source string) (string, error) {
	src, err := pluginsource.Parse(source, true)
	if err != nil {
		return "", err
	}
	switch src.Type {
	case pluginsource.Installed:
		return src.Address(), nil
	case pluginsource.Path:
		abs := src.Path
		if !filepath.IsAbs(abs) {
			abs = filepath.Join(dir, abs)
		}
		abs = filepath.Clean(abs)
		if rel, err := filepath.Rel(dir, abs); err == nil && !strings.HasPrefix(rel, "..") {
			return "./" + filepath.ToSlash(rel), nil
		}
		return abs, nil
	}
	return "", nil
}

// DevOverrides reads $NEMOCLAVE_HOME/dev_overrides.hcl:
//
//	dev_overrides = {
//	  "example.com/acme/wordcount" = "/home/me/src/wordcount/nemoclave-plugin-tools-wordcount"
//	}
//
// An attribute holding an object, not a block as in Terraform's CLI
// config: HCL 2 does not allow the quoted names sources need as argument
// names in a block.
func (m *Manager) DevOverrides() (map[string]string, error) {
	path := filepath.Join(m.opts.Home, DevOverridesName)
	src, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	const form = `it holds dev_overrides = { "<source>" = "<binary>", ... }`
	f, diags := hclparse.NewParser().ParseHCL(src, path)
	if diags.HasErrors() {
		return nil, fmt.Errorf("%s (%s)", diags.Error(), form)
	}
	attrs, diags := f.Body.JustAttributes()
	if diags.HasErrors() {
		return nil, fmt.Errorf("%s (%s)", diags.Error(), form)
	}
	out := map[string]string{}
	for name, a := range attrs {
		if name != "dev_overrides" {
			return nil, fmt.Errorf("%s: unknown setting %q (%s)", a.NameRange, name, form)
		}
		if diags := gohcl.DecodeExpression(a.Expr, nil, &out); diags.HasErrors() {
			return nil, fmt.Errorf("%s (%s)", diags.Error(), form)
		}
	}
	return out, nil
}

// Checked is the outcome of checking one plugin against the project lock.
type Checked struct {
	Binary *Binary
	// Pin is nil for builtins.
	Pin *Pin
	// Warning is set for dev overrides.
	Warning string
}

// CheckLocked resolves source (as the blueprint in dir writes it, with
// constraint) against the project lock and verifies the file: builtins
// need no entry; installed addresses use the locked version, which must
// satisfy constraint; paths and installed plugins must hash to a locked
// hash. Every error says what to run.
func (m *Manager) CheckLocked(lock *ProjectLock, dir, source, constraint string) (*Checked, error) {
	key, err := LockKey(dir, source)
	if err != nil {
		return nil, err
	}
	if key == "" {
		b, err := m.Resolve(source)
		if err != nil {
			return nil, err
		}
		return &Checked{Binary: b}, nil
	}
	overrides, err := m.DevOverrides()
	if err != nil {
		return nil, err
	}
	if path, ok := overrides[key]; ok {
		b, err := resolvePath(path)
		if err != nil {
			return nil, fmt.Errorf("dev override for %s in %s: %w", key, filepath.Join(m.opts.Home, DevOverridesName), err)
		}
		return &Checked{Binary: b, Pin: &Pin{DevOverride: b.Path, Hash: b.Hash},
			Warning: fmt.Sprintf("Plugin %s is overridden by %s (%s): its version and checksum are not checked. Remove the entry when you are done developing it.", key, b.Path, filepath.Join(m.opts.Home, DevOverridesName))}, nil
	}
	entry := lock.Plugins[key]
	initHint := fmt.Sprintf("run `nemoclave init %s` to record it", dir)
	if entry == nil {
		if !lock.Exists {
			return nil, fmt.Errorf("plugin %s is not locked: %s has no lock file (%s); %s", key, dir, ProjectLockName, initHint)
		}
		return nil, fmt.Errorf("plugin %s is not in %s; %s", key, lock.Path, initHint)
	}
	var b *Binary
	src, _ := pluginsource.Parse(source, false)
	if src.Type == pluginsource.Installed {
		if constraint != "" {
			c, err := pluginsource.ParseConstraint(constraint)
			if err != nil {
				return nil, err
			}
			lv, err := version.NewVersion(entry.Version)
			if err != nil {
				return nil, fmt.Errorf("%s: plugin %s has no valid version; %s", lock.Path, key, initHint)
			}
			if !c.Check(lv) {
				installed, _ := m.InstalledVersions(key)
				return nil, fmt.Errorf("%s is locked at version %s in %s, which does not satisfy %q (installed: %s); install a matching version and run `nemoclave init -upgrade %s`",
					key, entry.Version, lock.Path, constraint, listOrNone(installed), dir)
			}
		}
		if b, err = m.ResolveConstraint(key+"@"+entry.Version, constraint); err != nil {
			return nil, err
		}
	} else if b, err = m.Resolve(source); err != nil {
		return nil, err
	}
	v, err := m.verify(b)
	if err != nil {
		return nil, err
	}
	v.close()
	if !slices.Contains(entry.Hashes, b.Hash) {
		return nil, fmt.Errorf("plugin %s (%s) does not match %s: its hash is %s, the lock has %s. If you changed it on purpose, run `nemoclave init %s`; otherwise the file was replaced and must not run",
			key, b.Path, lock.Path, b.Hash, strings.Join(entry.Hashes, ", "), dir)
	}
	return &Checked{Binary: b, Pin: &Pin{Version: entry.Version, Hash: b.Hash}}, nil
}

// LockPlugin resolves source for `nemoclave init`: the newest installed
// version satisfying constraint (or the locked one, unless upgrade), and
// returns the lock entry to write.
func (m *Manager) LockPlugin(lock *ProjectLock, dir, source, constraint string, upgrade bool) (*LockedPlugin, *Binary, error) {
	key, err := LockKey(dir, source)
	if err != nil || key == "" {
		return nil, nil, err
	}
	src, _ := pluginsource.Parse(source, false)
	var b *Binary
	if src.Type == pluginsource.Installed {
		b, err = m.ResolveConstraint(key, constraint)
		if old := lock.Plugins[key]; err == nil && old != nil && !upgrade && old.Version != b.Version {
			// Keep the locked version while it is installed and allowed.
			if kept, kerr := m.ResolveConstraint(key+"@"+old.Version, constraint); kerr == nil {
				b = kept
			}
		}
	} else {
		b, err = m.Resolve(source)
	}
	if err != nil {
		return nil, nil, err
	}
	v, err := m.verify(b)
	if err != nil {
		return nil, nil, err
	}
	v.close()
	return &LockedPlugin{Source: key, Version: b.Version, Constraints: constraint, Hashes: []string{b.Hash}}, b, nil
}

func listOrNone(vs []string) string {
	if len(vs) == 0 {
		return "none"
	}
	return strings.Join(vs, ", ")
}
