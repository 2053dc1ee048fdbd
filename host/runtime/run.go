package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/nemoclave/nemoclave/blueprints"
	"github.com/nemoclave/nemoclave/gateway/agentapi"
	"github.com/nemoclave/nemoclave/gateway/egress"
	"github.com/nemoclave/nemoclave/gateway/inference"
	"github.com/nemoclave/nemoclave/gateway/listener"
	"github.com/nemoclave/nemoclave/host/daemon"
	"github.com/nemoclave/nemoclave/host/plugins"
	"github.com/nemoclave/nemoclave/host/state"
	"github.com/nemoclave/nemoclave/policy"
	"github.com/nemoclave/nemoclave/sandbox"
	"github.com/nemoclave/nemoclave/sandbox/local"
	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/tools"
)

// run is one sandbox of a blueprint run, with everything it owns.
type run struct {
	r       *Runtime
	name    string // sandbox name
	agent   *blueprints.Agent
	bp      *blueprints.Blueprint
	driver  sandbox.Driver
	plugins launched
	// pluginRefs counts the sandboxes of the run sharing these plugin
	// processes; the last one to stop closes them.
	pluginRefs *refcount
	router     *inference.Router
	// health is the breaker state of this run's provider plugins, shared
	// by the run's sandboxes and no one else's: plugins are per run, so a
	// circuit describes one plugin instance.
	health    *inference.Health
	api       *agentapi.Handler
	servers   []*listener.Server
	listeners []net.Listener
	cancel    context.CancelFunc
	gwLog     *os.File
	auditLog  *os.File
	base      *policy.Policy
	workspace string // host directory mounted at /workspace
	log       *slog.Logger

	stopOnce sync.Once
	// stopping is set when stop begins: commands that act on running
	// sandboxes (inference set, status) skip a run whose plugins are going.
	stopping atomic.Bool
	done     chan struct{}
	// deleteOnce guards deleteState: after a delete, a replacement run
	// may use the same name, and a late second delete would remove it.
	deleteOnce sync.Once
	deleteErr  error

	// stdin is what the agent reads (a terminal, a pipe or nothing).
	stdin sandbox.StdinMode
	// detached is set when the operator detached from an attached run:
	// the run's end no longer stops the agent.
	detached atomic.Bool
	// hand is the blueprint kept in the shared state for the other
	// replicas to serve this hand-run sandbox (nil: none).
	hand *state.HandRun
	// served is set for a run that serves the gateway for a sandbox this
	// runtime did not start (ServeRunning): its stop detaches this
	// replica and leaves the sandbox, its record and its lifecycle alone.
	served bool
}

type refcount struct {
	mu sync.Mutex
	n  int
}

// Run evaluates the blueprint and starts one sandbox per agent. Attached,
// it streams the agents' output until they exit and then cleans up; a
// cancelled context (Ctrl-C in the CLI) stops and cleans up too. Detached,
// it returns once the agents run.
func (r *Runtime) Run(ctx context.Context, req daemon.RunRequest, ev daemon.RunEvents) error {
	// A step reports its start, what it waits for while it runs (phase
	// "progress": a pod's phase and last event, the plugin launching) and
	// its end; the CLI shows a spinner with that reason.
	step := func(name string, f func(ctx context.Context) (string, error)) error {
		start := time.Now()
		ev.Step(daemon.Step{Name: name, Phase: "start"})
		var mu sync.Mutex
		pctx := sandbox.WithProgress(ctx, func(msg string) {
			mu.Lock()
			defer mu.Unlock()
			ev.Step(daemon.Step{Name: name, Phase: "progress", DurationMS: since(start), Detail: r.opts.Redact(msg)})
		})
		detail, err := f(pctx)
		if err != nil {
			ev.Step(daemon.Step{Name: name, Phase: "failed", DurationMS: since(start), Detail: r.opts.Redact(err.Error())})
			return fmt.Errorf("%s: %w", name, err)
		}
		ev.Step(daemon.Step{Name: name, Phase: "done", DurationMS: since(start), Detail: detail})
		return nil
	}

	var bp *blueprints.Blueprint
	if err := step("evaluate blueprint", func(ctx context.Context) (string, error) {
		var err error
		bp, err = r.evaluate(ctx, req)
		if err != nil {
			return "", err
		}
		if len(bp.Agents) == 0 {
			return "", errors.New("the blueprint declares no agent block; add one to say what runs in the sandbox")
		}
		return fmt.Sprintf("%d plugins, %d sandboxes, %d agents", len(bp.Plugins), len(bp.Sandboxes), len(bp.Agents)), nil
	}); err != nil {
		return err
	}
	switch sandbox.StdinMode(req.Stdin) {
	case sandbox.StdinNull, sandbox.StdinPipe, sandbox.StdinTTY:
	default:
		return fmt.Errorf("run: unknown stdin mode %q (tty, pipe or empty)", req.Stdin)
	}
	attached, err := attachedAgent(bp, req)
	if err != nil {
		return err
	}
	// A hand run on a daemon whose replicas share the state: every
	// replica serves its sandboxes from the blueprint kept there.
	var hand *state.HandRun
	if req.HandRun && r.sharesHandRuns(bp) {
		if err := step("share the blueprint with the other replicas", func(ctx context.Context) (string, error) {
			return r.shareHandRun(ctx, bp, req, &hand)
		}); err != nil {
			return err
		}
	}
	if err := step("prepare sandboxes", func(ctx context.Context) (string, error) { return r.checkNew(ctx, bp, req) }); err != nil {
		return err
	}
	// This replica may have served the previous sandboxes of these names
	// for another replica; the new ones are its own.
	for _, a := range bp.Agents {
		r.stopServed(a.Sandbox)
	}

	// Before the plugins: a tools plugin opens the workspace when it is
	// configured, and a descriptor opened before the mount would write
	// under it, past the bound.
	if err := step("bound workspaces", func(ctx context.Context) (string, error) { return r.boundWorkspaces(bp) }); err != nil {
		return err
	}
	var pl launched
	if err := step("launch plugins", func(ctx context.Context) (string, error) {
		var err error
		reattach, err := plugin.ParseReattach(req.ReattachPlugins)
		if err != nil {
			return "", fmt.Errorf("%w (the value printed by a debug plugin started with plugin.WithDebug; unset it to launch the installed plugins)", err)
		}
		r.pluginLog.noteRun(runSandboxes(bp), req.Path)
		pl, err = r.launchPlugins(ctx, bp, reattach)
		detail := fmt.Sprintf("%d running", len(pl))
		if un := unconfinedPlugins(bp); len(un) > 0 && r.opts.ConfinePlugins && err == nil {
			detail += "; WARNING: UNCONFINED (confine = false, with the daemon's files and network): " + strings.Join(un, ", ")
		}
		if dev := devOverrides(bp); len(dev) > 0 && err == nil {
			detail += "; WARNING: DEV OVERRIDE (version and checksum not checked; $NEMOCLAVE_HOME/" + plugins.DevOverridesName + "): " + strings.Join(dev, ", ")
		}
		return detail, err
	}); err != nil {
		r.releaseWorkspaces(runSandboxes(bp))
		return err
	}
	refs := &refcount{n: len(bp.Agents)}
	health := inference.NewHealth(inference.DefaultBreaker)

	var runs []*run
	// A failed start leaves nothing behind: no process, no record, so the
	// next run of the blueprint starts afresh.
	cleanup := func(reason string) {
		for _, rn := range runs {
			rn.stop(context.Background(), reason)
			if err := rn.deleteState(context.Background()); err != nil {
				r.log.Warn("cannot remove a sandbox whose start failed", "sandbox", rn.name, "err", err)
			}
		}
		// The sandboxes that were never made hold the plugins too.
		refs.mu.Lock()
		defer refs.mu.Unlock()
		if refs.n > 0 {
			refs.n = 0
			pl.close(r.pool, runSandboxes(bp))
		}
		r.releaseWorkspaces(runSandboxes(bp))
	}
	if !req.Detach && req.Stdin != "" && len(bp.Agents) > 1 {
		// Say which agent the typing reaches, and what the others get.
		a := bp.Agents[attached]
		var others []string
		for i, o := range bp.Agents {
			if i != attached {
				others = append(others, fmt.Sprintf("%s (sandbox %s)", o.Name, o.Sandbox))
			}
		}
		name := fmt.Sprintf("input goes to agent %s in sandbox %s", a.Name, a.Sandbox)
		ev.Step(daemon.Step{Name: name, Phase: "start"})
		ev.Step(daemon.Step{Name: name, Phase: "done", Detail: fmt.Sprintf(
			"%s read no input; choose the agent with --attach-agent NAME, or run with -d and type into each with `nemoclave <sandbox> connect`",
			strings.Join(others, ", "))})
	}
	for i, a := range bp.Agents {
		rn := &run{r: r, name: a.Sandbox, agent: a, bp: bp, plugins: pl, pluginRefs: refs, health: health, done: make(chan struct{}), hand: hand}
		// One agent of an attached run (--attach-agent, else the first)
		// reads what the CLI forwards; detached agents get a terminal, so
		// `connect` can type into them later (an agent that reads nothing
		// never notices it).
		switch {
		case req.Detach:
			rn.stdin = sandbox.StdinTTY
		case i == attached:
			rn.stdin = sandbox.StdinMode(req.Stdin)
		}
		if err := step("configure gateway for "+a.Sandbox, func(context.Context) (string, error) { return rn.configureGateway() }); err != nil {
			rn.stop(context.Background(), "start failed") // its gateway parts
			cleanup("start failed")
			return err
		}
		runs = append(runs, rn)
		r.mu.Lock()
		r.runs[rn.name] = rn
		r.mu.Unlock()
		if err := step("create sandbox "+a.Sandbox, func(ctx context.Context) (string, error) { return rn.createSandbox(ctx, req.Path) }); err != nil {
			cleanup("start failed")
			return err
		}
		if err := step("start agent "+a.Name, func(context.Context) (string, error) { return rn.start() }); err != nil {
			cleanup("start failed")
			return err
		}
		// A pod is scheduled and its image pulled after Start returns: an
		// attached run shows what it waits for until the agent runs.
		// Detached runs (and the controller) return at once; `sandbox
		// list` shows the state.
		if w, ok := rn.driver.(sandbox.RunningWaiter); ok && !req.Detach {
			if err := step("wait for sandbox "+a.Sandbox+" to run", func(ctx context.Context) (string, error) {
				info, err := w.WaitRunning(ctx, rn.name)
				if err != nil && info.State == sandbox.StateExited && !info.StartedAt.IsZero() {
					// It ran, and was quick: its output and exit follow.
					return "ran and exited", nil
				}
				if err != nil {
					return "", err
				}
				return "running", nil
			}); err != nil {
				cleanup("start failed")
				return err
			}
		}
		rn.openConsole(ctx, req, ev)
	}
	if req.Detach {
		return nil
	}
	return r.follow(ctx, runs, ev)
}

// attachedAgent is the index of the agent of an attached run that reads
// the CLI's input: the one req.AttachAgent names (by agent or sandbox
// name), else the first.
func attachedAgent(bp *blueprints.Blueprint, req daemon.RunRequest) (int, error) {
	if req.AttachAgent == "" {
		return 0, nil
	}
	if req.Detach {
		return 0, fmt.Errorf("--attach-agent %s is for attached runs: with -d every agent gets a terminal; type into one with `nemoclave <sandbox> connect`", req.AttachAgent)
	}
	var names []string
	for i, a := range bp.Agents {
		if a.Name == req.AttachAgent || a.Sandbox == req.AttachAgent {
			return i, nil
		}
		names = append(names, a.Name)
	}
	return 0, fmt.Errorf("--attach-agent %s: the blueprint has no agent of that name; its agents: %s", req.AttachAgent, strings.Join(names, ", "))
}

// devOverrides lists the plugins a dev override replaces, with the build
// that runs instead, for the run's warning (validate warns too).
func devOverrides(bp *blueprints.Blueprint) []string {
	var out []string
	for _, p := range bp.Plugins {
		if p.Locked != nil && p.Locked.DevOverride != "" {
			out = append(out, p.Address+" = "+p.Locked.DevOverride)
		}
	}
	return out
}

// follow streams the agents' output until every agent exits, or ctx ends
// (then stops them). Attached runs clean up after themselves.
func (r *Runtime) follow(ctx context.Context, runs []*run, ev daemon.RunEvents) error {
	var wg sync.WaitGroup
	for _, rn := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lctx, cancel := context.WithCancel(ctx)
			defer cancel()
			logsDone := make(chan struct{})
			go func() {
				defer close(logsDone)
				if err := rn.followLogs(lctx, eventWriter{ev}); err != nil {
					r.log.Warn("cannot follow the agent's log", "sandbox", rn.name, "err", err)
				}
			}()
			info, err := rn.driver.Wait(ctx, rn.name)
			if err != nil && rn.detached.Load() {
				// The operator detached: the agent runs on, as with -d.
				return
			}
			if err != nil {
				ev.Exit(rn.name, -1, "interrupted: the sandbox was stopped and deleted")
				rn.stop(context.Background(), "interrupted")
				_ = rn.deleteState(context.Background())
				return
			}
			// The follower reads everything the agent wrote before it
			// notices the cancellation at the end of the log.
			cancel()
			<-logsDone
			ev.Exit(rn.name, info.ExitCode, info.Reason)
			rn.stop(context.Background(), "agent exited")
			_ = rn.deleteState(context.Background())
		}()
	}
	wg.Wait()
	return nil
}

// evaluate loads the blueprint, asking the plugins themselves for schemas.
func (r *Runtime) evaluate(ctx context.Context, req daemon.RunRequest) (*blueprints.Blueprint, error) {
	lookup := func(k string) (string, bool) { v, ok := req.VarEnv[k]; return v, ok }
	probes, err := plugins.New(r.pluginOpts)
	if err != nil {
		return nil, err
	}
	defer probes.Close()
	schemas := plugins.NewSchemaSource(probes, nil).WithCache(r.schemas)
	// A daemon's first run probes its plugins; the loader asks one block
	// after the other, so the builtins' probes start together first.
	wait := prefetchSchemas(ctx, schemas, req.Path)
	defer wait()
	l := blueprints.NewLoader(blueprints.Options{
		Vars: req.Vars, VarFiles: req.VarFiles, LookupEnv: lookup,
		Schemas: schemas, PresetDirs: presetDirs(r.opts.Home),
		Host:       blueprintHost{r},
		DaemonHome: r.opts.Home,
		Root:       req.Root,
	})
	bp, diags := l.Load(ctx, req.Path)
	if diags.HasErrors() {
		var buf bytes.Buffer
		w := hcl.NewDiagnosticTextWriter(&buf, l.Files(), 100, false)
		_ = w.WriteDiagnostics(diags)
		if req.Root != "" {
			// The caller knows its files by their paths in the upload.
			text := strings.ReplaceAll(buf.String(), req.Root+string(filepath.Separator), "")
			return nil, fmt.Errorf("the uploaded blueprint has errors (stored on the daemon's host in %s):\n%s", req.Root, text)
		}
		return nil, fmt.Errorf("the blueprint has errors (run `nemoclave validate %s`):\n%s", req.Path, buf.String())
	}
	if req.Root != "" {
		if err := checkUploadPlugins(bp, req.Root); err != nil {
			return nil, err
		}
	}
	return bp, nil
}

// checkUploadPlugins holds the plugins of an uploaded blueprint to its
// upload: a confined plugin sees every absolute path its config names
// (pluginAccess), so each path it would be given must be inside the
// upload, or a remote caller could hand the daemon host's files (its
// home, other users' data) to a plugin and its agent. A plugin may not run
// unconfined either: that is the daemon's user's decision, not a remote
// caller's.
func checkUploadPlugins(bp *blueprints.Blueprint, root string) error {
	for _, p := range bp.Plugins {
		if p.Unconfined {
			return fmt.Errorf("plugin %s: confine = false is refused in an uploaded (remote) blueprint: an unconfined plugin has the daemon's files and network; remove it", p.Address)
		}
		source, cfg, err := pluginSource(p)
		if err != nil {
			return fmt.Errorf("plugin %s: %w", p.Address, err)
		}
		if strings.HasSuffix(source, "tools-mcp") {
			var c struct {
				Sandbox string `json:"sandbox"`
			}
			if json.Unmarshal(cfg, &c) == nil && c.Sandbox == "none" {
				return fmt.Errorf("plugin %s: sandbox = \"none\" runs the MCP server unconfined on the daemon's host, which an uploaded (remote) blueprint may not do; remove it", p.Address)
			}
		}
		access, _ := pluginAccess(source, p.Kind, cfg)
		for _, path := range append(append([]string(nil), access.ReadOnly...), access.ReadWrite...) {
			if !insideReal(root, path) {
				return fmt.Errorf("plugin %s: its config names %s, outside the upload: an uploaded (remote) blueprint's plugins may reach only files sent with it; use a path below ${path.blueprint}", p.Address, path)
			}
		}
	}
	return nil
}

// insideReal says whether p, with the links of what exists resolved, lies
// inside root.
func insideReal(root, p string) bool {
	rr, err := filepath.EvalSymlinks(root)
	if err != nil {
		return false
	}
	for q := filepath.Clean(p); ; q = filepath.Dir(q) {
		if real, err := filepath.EvalSymlinks(q); err == nil {
			_, ok := blueprints.InsideRoot(rr, real)
			return ok
		}
		if q == filepath.Dir(q) {
			return false
		}
	}
}

// checkNew makes room for the run's sandboxes: the one check that needs the
// daemon's state (everything static — names, one agent per sandbox, drivers,
// credentials — the blueprint language reported already). A sandbox name
// taken by another blueprint is refused (never deleted for the user). One of this
// blueprint's own is replaced when it no longer runs (stopped, exited,
// failed, lost), and when it runs only with req.Replace. Every name is
// checked before anything is deleted.
func (r *Runtime) checkNew(ctx context.Context, bp *blueprints.Blueprint, req daemon.RunRequest) (string, error) {
	var replace []string
	for _, a := range bp.Agents {
		s, err := r.db.Sandbox(ctx, a.Sandbox)
		if errors.Is(err, state.ErrNotFound) {
			continue
		}
		if err != nil {
			return "", err
		}
		if !sameBlueprint(s.Blueprint, req.Path) {
			return "", fmt.Errorf("sandbox %q already exists and belongs to another blueprint (%s); it is not deleted for you: delete it with `nemoclave sandbox delete %s`, or give this blueprint's sandbox another name",
				a.Sandbox, s.Blueprint, a.Sandbox)
		}
		// The driver knows whether the agent still runs; the state's record
		// may lag an exit by the time its watcher writes it.
		if r.view(ctx, s).State == string(sandbox.StateRunning) && !req.Replace {
			return "", fmt.Errorf("sandbox %q of this blueprint (%s) is running; replace it with `nemoclave run %s --replace`, or stop it with `nemoclave sandbox delete %s`",
				a.Sandbox, s.Blueprint, req.Path, a.Sandbox)
		}
		replace = append(replace, a.Sandbox)
	}
	for _, name := range replace {
		if err := r.deleteSandbox(ctx, name); err != nil && !errors.Is(err, state.ErrNotFound) {
			return "", fmt.Errorf("replace sandbox %q of this blueprint: %w", name, err)
		}
	}
	if len(replace) == 0 {
		return "names free", nil
	}
	return fmt.Sprintf("replaced %s", strings.Join(replace, ", ")), nil
}

// sameBlueprint says whether two recorded blueprint paths name the same
// blueprint: equal, or a directory and a file in it.
func sameBlueprint(a, b string) bool {
	a, b = filepath.Clean(a), filepath.Clean(b)
	return a == b || filepath.Dir(a) == b || filepath.Dir(b) == a
}

// configureGateway builds the sandbox's inference router and agent API and
// registers its policy with the egress proxy.
func (rn *run) configureGateway() (string, error) {
	r, bp := rn.r, rn.bp
	sb := bp.Sandbox(rn.agent.Sandbox)
	if sb == nil {
		return "", fmt.Errorf("agent %q names sandbox %q, which the blueprint does not declare", rn.agent.Name, rn.agent.Sandbox)
	}
	rn.base = sb.Policy.Clone()
	rn.base.Revision = 1
	if err := rn.base.Validate(); err != nil {
		return "", fmt.Errorf("policy of sandbox %s: %w", sb.Name, err)
	}
	logDir := filepath.Join(r.opts.Home, "logs", rn.name)
	if err := os.MkdirAll(logDir, 0o700); err != nil {
		return "", err
	}
	var err error
	if rn.gwLog, err = os.OpenFile(filepath.Join(logDir, "gateway.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err != nil {
		return "", err
	}
	if rn.auditLog, err = os.OpenFile(filepath.Join(r.opts.Home, "audit", "agentapi-"+rn.name+".jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err != nil {
		return "", err
	}
	rn.log = newJSONLogger(rn.gwLog, "runtime", rn.name)
	enc := json.NewEncoder(rn.auditLog)
	var auditMu sync.Mutex
	routes, limits, err := routesFor(bp)
	if err != nil {
		return "", err
	}
	llms, embs := rn.plugins.providers()
	applyConfigDefault(r.opts.Home, &routes, llms, rn.log)
	if rn.agent.Model != "" {
		if _, ok := routes.Models[rn.agent.Model]; ok {
			routes.Default = rn.agent.Model
		}
	}
	if rn.router, err = inference.New(context.Background(), inference.Config{
		Sandbox: rn.name, Routes: routes, Providers: llms, Embedders: embs, Limits: limits,
		Usage: r.usage, Health: rn.health, Metrics: r.metrics, Logger: newJSONLogger(rn.gwLog, "inference", rn.name),
		TracerProvider: r.opts.TracerProvider,
		Redact:         r.opts.Redact,
		// Budget and rate-limit refusals go to the sandbox's audit log.
		Audit: func(ev inference.RefusalEvent) {
			auditMu.Lock()
			defer auditMu.Unlock()
			_ = enc.Encode(struct {
				Kind string `json:"kind"`
				inference.RefusalEvent
			}{"inference_refusal", ev})
		},
	}); err != nil {
		return "", err
	}
	var srcs []agentapi.ToolSource
	for _, name := range rn.agent.Tools {
		tp, err := rn.plugins.tools(name)
		if err != nil {
			return "", err
		}
		srcs = append(srcs, agentapi.ToolSource{Name: name, Provider: tp})
	}
	if sub := rn.subagentTools(routes); sub != nil {
		srcs = append(srcs, agentapi.ToolSource{Name: "subagents", Provider: sub})
	}
	mem, err := rn.plugins.memory(rn.agent.Memory)
	if err != nil {
		return "", err
	}
	ret, err := rn.plugins.retrieval(rn.agent.Retrieval)
	if err != nil {
		return "", err
	}
	if rn.workspace, err = r.makeWorkspace(sb); err != nil {
		return "", err
	}
	if rn.api, err = agentapi.New(context.Background(), agentapi.Config{
		Identity: agentapi.Identity{Sandbox: rn.name, Agent: rn.agent.Name, User: "default"},
		Tools:    srcs, Memory: mem, Retrieval: ret,
		DataProc: rn.plugins.dataproc(), Workspace: rn.workspace, Filesystem: &rn.base.Filesystem,
		Audit: func(e agentapi.Event) {
			auditMu.Lock()
			defer auditMu.Unlock()
			_ = enc.Encode(e)
		},
	}); err != nil {
		return "", err
	}
	if err := r.egress.SetPolicy(rn.name, rn.base); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d model routes, %d tool sources, %d network rules", len(routes.Models), len(srcs), len(rn.base.Network)), nil
}

// subagentTools exposes the agent's declared subagents as tools; nil when
// there are none.
func (rn *run) subagentTools(routes inference.Routes) tools.Provider {
	if len(rn.agent.Subagents) == 0 {
		return nil
	}
	return &subagents{rn: rn, routes: routes}
}

// createSandbox creates the sandbox with the gateway's listeners, the
// egress CA bundle visible read-only inside (the driver adds the nemoclave
// binary itself).
func (rn *run) createSandbox(ctx context.Context, blueprintPath string) (string, error) {
	r, sb := rn.r, rn.bp.Sandbox(rn.agent.Sandbox)
	driverName := sb.Driver
	if driverName == "" {
		driverName = "local"
	}
	d, ok := r.drivers[driverName]
	if !ok { // evaluate checked it; the daemon's drivers do not change
		return "", fmt.Errorf("sandbox %s: %w", sb.Name, DriverUnavailable(driverName, sortedKeys(r.drivers)))
	}
	rn.driver = d
	runDir := filepath.Join(r.opts.Home, "run", rn.name)
	// The sandbox's run directory is the daemon's (R10): 0700. The CA
	// bundle in it stays 0644: it holds only public certificates. The
	// driver copies it into the sandbox (sandbox.Spec.Files), so the
	// sandbox never walks this directory.
	if err := os.MkdirAll(runDir, 0o700); err != nil {
		return "", err
	}
	if err := os.Chmod(runDir, 0o700); err != nil { // made 0755 by an older daemon
		return "", err
	}
	bundle, err := r.egress.TrustBundle(rn.name)
	if err != nil {
		return "", err
	}
	// The one host copy serves operators (curl --cacert) and is the
	// source the driver copies to the sandbox's fixed path (never a view
	// into the nemoclave home); the spec names it and its hash, so the
	// sandbox's record carries no bundle bytes.
	bundleFile := filepath.Join(runDir, "ca-bundle.pem")
	if err := os.WriteFile(bundleFile, bundle, 0o644); err != nil {
		return "", err
	}
	caPath := sandbox.CABundlePath
	pol := rn.base.Clone()
	env := map[string]string{}
	for k, v := range sb.Environment {
		env[k] = v
	}
	for _, kv := range egress.TrustEnv(caPath) {
		for i := 0; i < len(kv); i++ {
			if kv[i] == '=' {
				env[kv[:i]] = kv[i+1:]
				break
			}
		}
	}
	// The nemoclave binary is inside every sandbox on PATH (the local
	// driver binds it at local.BinaryPath, the pod image ships it), never
	// at its host path: wrapper scripts reach the built-in agent as
	// "$NEMOCLAVE_BIN" agent.
	env["NEMOCLAVE_BIN"] = "nemoclave"
	if driverName == "local" {
		env["NEMOCLAVE_BIN"] = local.BinaryPath
	}
	if rn.agent.Model != "" {
		env["NEMOCLAVE_MODEL"] = rn.agent.Model
	}
	cmd := append([]string(nil), rn.agent.Command...)
	workspace := rn.workspace
	spec := sandbox.Spec{
		Name: rn.name, Command: cmd, Env: env, Workspace: workspace, Policy: pol, Stdin: rn.stdin,
		Files: []sandbox.File{sandbox.NewFile(caPath, bundleFile, bundle)},
		Resources: sandbox.Resources{CPUs: sb.Resources.CPUs, MemoryBytes: sb.Resources.MemoryBytes, Pids: int64(sb.Resources.PIDs),
			TmpBytes: sb.Resources.TmpBytes, WorkspaceBytes: sb.Resources.WorkspaceBytes, AllowUnlimited: sb.Resources.AllowUnlimited},
		Listeners: []sandbox.ListenerSpec{{Name: sandbox.ListenerEgress}, {Name: sandbox.ListenerInference}, {Name: sandbox.ListenerAgentAPI}},
	}
	if k := sb.Kubernetes; k != nil && driverName == "kubernetes" {
		// Opaque to the runtime: the kubernetes driver decodes and
		// validates its own block.
		if spec.DriverConfig, err = json.Marshal(k); err != nil {
			return "", err
		}
	}
	if _, err := d.Create(ctx, spec); err != nil {
		return "", err
	}
	detail, _ := json.Marshal(map[string]any{"workspace": workspace, "command": rn.agent.Command, "policy": rn.base.Name, "plugins": sortedKeys(rn.plugins)})
	if err := r.db.PutSandbox(ctx, state.Sandbox{Name: rn.name, Blueprint: blueprintPath, Agent: rn.agent.Name, Driver: driverName,
		State: string(sandbox.StateCreated), Detail: detail}); err != nil {
		return "", err
	}
	if err := r.db.AddRevision(ctx, rn.name, "blueprint", rn.base); err != nil {
		return "", err
	}
	// The blueprint every replica serves this sandbox from; a sandbox of
	// this name run otherwise has none.
	if rn.hand != nil {
		if err := r.db.PutHandRun(ctx, state.HandRun{Sandbox: rn.name, Digest: rn.hand.Digest, Spec: rn.hand.Spec}); err != nil {
			return "", err
		}
	} else if err := r.db.DeleteHandRun(ctx, rn.name); err != nil {
		return "", err
	}
	return fmt.Sprintf("driver %s, workspace %s", driverName, workspace), nil
}

// start starts the agent and serves the gateway on the sandbox's listeners.
func (rn *run) start() (string, error) {
	r := rn.r
	started, err := rn.driver.Start(context.Background(), rn.name)
	if err != nil {
		return "", err
	}
	rn.serve(started)
	if err := r.db.SetSandboxState(context.Background(), rn.name, string(sandbox.StateRunning), 0, ""); err != nil {
		return "", err
	}
	go rn.watchExit()
	return fmt.Sprintf("ports %v", started.Info.Ports), nil
}

// serve serves the gateway on a started sandbox's listeners.
func (rn *run) serve(started *sandbox.Started) {
	r := rn.r
	ctx, cancel := context.WithCancel(context.Background())
	rn.cancel = cancel
	for name, ln := range started.Listeners {
		rn.listeners = append(rn.listeners, ln)
		switch name {
		case sandbox.ListenerEgress:
			go func() { _ = r.egress.Serve(ctx, ln, rn.name) }()
		case sandbox.ListenerInference:
			rn.serveHTTP(ln, rn.router, "inference")
		case sandbox.ListenerAgentAPI:
			rn.serveHTTP(ln, rn.api, "agent API")
		default:
			ln.Close()
		}
	}
}

// serveHTTP serves a sandbox-facing listener with a connection cap and
// header, body and idle deadlines, so a sandbox flooding or trickling
// into it exhausts only its own allowance.
func (rn *run) serveHTTP(ln net.Listener, h http.Handler, name string) {
	srv := listener.New(ln, h, name, rn.r.opts.ListenerLimits)
	rn.servers = append(rn.servers, srv)
	go func() { _ = srv.Serve() }()
}

// watchExit records the agent's exit and stops what served it (gateway,
// plugins); the record stays for `sandbox list` and `logs` until deleted or
// replaced by the next run of the blueprint.
func (rn *run) watchExit() {
	info, err := rn.driver.Wait(context.Background(), rn.name)
	if err != nil {
		return
	}
	if !rn.served {
		_ = rn.r.db.SetSandboxState(context.Background(), rn.name, string(info.State), info.ExitCode, info.Reason)
	}
	rn.stop(context.Background(), "agent exited")
}

// stop stops the agent, the gateway servers and (when no other sandbox of
// the run uses them) the plugins. The sandbox record stays.
func (rn *run) stop(ctx context.Context, reason string) {
	rn.stopping.Store(true)
	rn.stopOnce.Do(func() {
		if d, ok := rn.driver.(reattacher); ok && rn.served {
			d.Detach(rn.name)
		} else if rn.driver != nil {
			_ = rn.driver.Stop(ctx, rn.name, 3*time.Second)
			if info, err := rn.driver.Status(ctx, rn.name); err == nil {
				_ = rn.r.db.SetSandboxState(ctx, rn.name, string(info.State), info.ExitCode, firstNonEmpty(info.Reason, reason))
			}
		}
		if rn.cancel != nil {
			rn.cancel()
		}
		for _, s := range rn.servers {
			_ = s.Close()
		}
		for _, ln := range rn.listeners {
			_ = ln.Close()
		}
		if rn.api != nil {
			rn.api.Close()
		}
		if rn.router != nil {
			rn.router.Close()
		}
		rn.r.egress.RemoveSandbox(rn.name)
		rn.releasePlugins()
		rn.r.releaseWorkspaces([]string{rn.name})
		if rn.gwLog != nil {
			rn.gwLog.Close()
		}
		if rn.auditLog != nil {
			rn.auditLog.Close()
		}
		rn.r.mu.Lock()
		if rn.r.runs[rn.name] == rn {
			delete(rn.r.runs, rn.name)
		}
		rn.r.mu.Unlock()
		close(rn.done)
	})
}

// releasePlugins ends this sandbox's use of the run's plugins: their
// lines stop going to its plugin log (which stays, for `logs`), and the
// last sandbox of the run releases the processes.
func (rn *run) releasePlugins() {
	rn.pluginRefs.mu.Lock()
	defer rn.pluginRefs.mu.Unlock()
	rn.pluginRefs.n--
	if rn.pluginRefs.n <= 0 {
		rn.plugins.close(rn.r.pool, []string{rn.name})
		return
	}
	rn.r.pool.dropLogs(rn.plugins.all(), []string{rn.name})
}

// deleteState removes the sandbox from the driver and the state.
func (rn *run) deleteState(ctx context.Context) error {
	rn.deleteOnce.Do(func() {
		if rn.driver != nil {
			if err := rn.driver.Delete(ctx, rn.name); err != nil && !errors.Is(err, sandbox.ErrNotFound) {
				rn.deleteErr = err
				return
			}
		}
		_ = os.RemoveAll(filepath.Join(rn.r.opts.Home, "run", rn.name))
		if err := rn.r.db.DeleteSandbox(ctx, rn.name); err != nil && !errors.Is(err, state.ErrNotFound) {
			rn.deleteErr = err
		}
	})
	return rn.deleteErr
}
