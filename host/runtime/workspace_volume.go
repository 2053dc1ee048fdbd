package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/nemoclave/nemoclave/blueprints"
	"github.com/nemoclave/nemoclave/sandbox/volume"
)

// makeWorkspace returns the host directory of sb's workspace, created if
// missing: the blueprint's, or one under $NEMOCLAVE_HOME/workspaces.
func (r *Runtime) makeWorkspace(sb *blueprints.Sandbox) (string, error) {
	ws := sb.Workspace
	if ws == "" {
		ws = filepath.Join(r.opts.Home, "workspaces", sb.Name)
	}
	if err := os.MkdirAll(ws, 0o755); err != nil {
		return "", fmt.Errorf("workspace %s: %w", ws, err)
	}
	return ws, nil
}

// boundWorkspaces applies resources.workspace_size to the local sandboxes
// of bp (P11): each workspace is covered by a volume for the run, so the
// agent and the gateway tools (which write the same directory from the
// host) share one hard bound. The kubernetes driver bounds its own
// workspace volume. A host that cannot mount refuses, unless the sandbox
// set allow_unlimited: it then runs without the bound, said in the detail.
func (r *Runtime) boundWorkspaces(bp *blueprints.Blueprint) (string, error) {
	var bound, unbound []string
	seen := map[string]bool{}
	for _, name := range runSandboxes(bp) {
		sb := bp.Sandbox(name)
		if seen[name] || sb == nil || sb.Resources.WorkspaceBytes == 0 || sb.Driver == blueprints.DriverKubernetes {
			continue
		}
		seen[name] = true
		ws, err := r.makeWorkspace(sb)
		if err != nil {
			r.releaseWorkspaces(runSandboxes(bp))
			return "", err
		}
		v, err := volume.Mount(volume.Image(filepath.Join(r.opts.Home, "volumes"), ws), ws, sb.Resources.WorkspaceBytes)
		if errors.Is(err, volume.ErrUnsupported) && sb.Resources.AllowUnlimited {
			unbound = append(unbound, name)
			continue
		}
		if err != nil {
			r.releaseWorkspaces(runSandboxes(bp))
			return "", fmt.Errorf("sandbox %s: %w", name, err)
		}
		r.mu.Lock()
		r.volumes[name] = v
		r.mu.Unlock()
		bound = append(bound, fmt.Sprintf("%s %d MiB", name, sb.Resources.WorkspaceBytes>>20))
	}
	detail := "none bounded"
	if len(bound) > 0 {
		detail = strings.Join(bound, ", ")
	}
	if len(unbound) > 0 {
		detail += "; WARNING: workspace_size NOT applied (allow_unlimited, the daemon is not root): " + strings.Join(unbound, ", ")
	}
	return detail, nil
}

// releaseWorkspaces ends the bound of the named sandboxes' workspaces:
// their files are copied back into the directories and the images
// removed. A failure is logged with where the files are; the image stays.
func (r *Runtime) releaseWorkspaces(names []string) {
	for _, name := range names {
		r.mu.Lock()
		v := r.volumes[name]
		delete(r.volumes, name)
		r.mu.Unlock()
		if v == nil {
			continue
		}
		if err := v.Release(); err != nil {
			r.log.Error("the workspace bound could not be released", "sandbox", name, "err", err)
		}
	}
}
