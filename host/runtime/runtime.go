package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/nemoclave/nemoclave/gateway/egress"
	"github.com/nemoclave/nemoclave/gateway/inference"
	"github.com/nemoclave/nemoclave/gateway/listener"
	"github.com/nemoclave/nemoclave/host/plugins"
	"github.com/nemoclave/nemoclave/host/state"
	"github.com/nemoclave/nemoclave/policy"
	"github.com/nemoclave/nemoclave/sandbox"
	"github.com/nemoclave/nemoclave/sandbox/confine"
	"github.com/nemoclave/nemoclave/sandbox/local"
	"github.com/nemoclave/nemoclave/sandbox/volume"
)

// Options configures a Runtime.
type Options struct {
	// Home is $NEMOCLAVE_HOME.
	Home string
	// StateURL selects the state database: empty means Home/state.db
	// (SQLite); postgres://… keeps it in PostgreSQL, for a daemon whose
	// disk is not durable (a Deployment in a cluster).
	StateURL string
	// Credential resolves credential("NAME") for plugin configs. It is the
	// only path by which a secret reaches a plugin.
	Credential func(name string) (string, error)
	// Redact scrubs credential values from text leaving the gateway.
	Redact func(string) string
	// Drivers by name; nil means {"local": a local driver under
	// Home/sandboxes}.
	Drivers map[string]sandbox.Driver
	// PluginBinDir overrides where builtin plugins are found.
	PluginBinDir string
	// Executable is the nemoclave binary made visible inside sandboxes so
	// `nemoclave agent` runs there; empty means os.Executable().
	Executable string
	// ConfinePlugins starts every plugin in a plugin box (sandbox/pluginbox)
	// re-executing Executable, whose main must call pluginbox.MaybeInit
	// first; a blueprint opts a plugin out with confine = false. The
	// daemon sets it; false keeps plugins plain child processes.
	ConfinePlugins bool
	// AllowUnconfinedPlugins lets a blueprint's confine = false take
	// effect (the daemon's --allow-unconfined-plugins); otherwise such a
	// plugin is refused at launch. Either way it is audited.
	AllowUnconfinedPlugins bool
	// EgressResolver and UnsafeAllowLoopback exist for tests that serve
	// "internet" hosts on loopback.
	EgressResolver      egress.Resolver
	UnsafeAllowLoopback bool
	// UpstreamProxy is the corporate proxy (http://host:port) every
	// allowed egress connection is chained through, except targets in
	// UpstreamNoProxy (NO_PROXY syntax). UpstreamCAFile is a PEM bundle of
	// the corporate CA, trusted for upstream TLS and added to every
	// sandbox's trust bundle. The daemon fills them from --upstream-proxy,
	// --no-proxy and --upstream-ca-file (HTTPS_PROXY, NO_PROXY by default).
	UpstreamProxy   string
	UpstreamNoProxy string
	UpstreamCAFile  string
	// Logger receives daemon logs.
	Logger *slog.Logger
	// TracerProvider receives the inference gateway's spans; nil records
	// none.
	TracerProvider trace.TracerProvider
	// ListenerLimits bound each sandbox's inference and agent-API
	// listeners (connections, header/body/idle deadlines); zero fields
	// take listener's defaults.
	ListenerLimits listener.Limits
	// PluginIdleTTL keeps a plugin process whose last run ended for this
	// long, for the next run with the same launch to take over (pool.go);
	// 0 stops it when its last run ends. The daemon's --plugin-idle-ttl.
	PluginIdleTTL time.Duration

	// sharedPollListening replaces sharedPollWhileListening (tests set it
	// to an hour to prove that changes arrive by notification);
	// sharedNoListen leaves only the poll (the benchmark's baseline).
	sharedPollListening time.Duration
	sharedNoListen      bool
}

// Runtime is the daemon's backend. Safe for concurrent use.
type Runtime struct {
	opts    Options
	db      *state.DB
	plugins *plugins.Manager
	// pool shares plugin processes between runs (pool.go).
	pool *pluginPool
	// pluginOpts also build the short-lived managers that evaluate
	// blueprints, so schema probes die with the evaluation.
	pluginOpts plugins.Options
	schemas    *plugins.SchemaCache
	drivers    map[string]sandbox.Driver
	egress     *egress.Proxy
	registry   *prometheus.Registry
	metrics    *inference.Metrics
	usage      inference.UsageStore
	log        *slog.Logger
	// pluginLog holds the sandboxes' plugin logs and, through a
	// managerLog, $NEMOCLAVE_HOME/logs/plugins.log: the plugin manager's
	// own lines and those of plugins probed for schemas, which belong to
	// no sandbox.
	pluginLog *pluginLogFiles

	// holder names this daemon in the shared state's pending approvals,
	// and stopSync ends the mirror (sharedapprovals.go); both unset
	// without shared state.
	holder   string
	stopSync func()
	// shared is the state of the shared-state follower (sharedapprovals.go).
	shared sharedFollow
	// hand serves the hand runs of other replicas (handruns.go).
	hand handRuns

	mu   sync.Mutex
	runs map[string]*run // by sandbox name
	// volumes bound the workspaces of running local sandboxes with
	// resources.workspace_size, by sandbox name (workspace_volume.go).
	volumes map[string]*volume.Volume
}

// New opens the state, reconciles sandboxes left by an earlier daemon, and
// starts the shared gateway parts.
func New(ctx context.Context, o Options) (*Runtime, error) {
	if o.Home == "" {
		return nil, errors.New("runtime: no home directory")
	}
	if o.Credential == nil {
		o.Credential = func(name string) (string, error) {
			if v, ok := os.LookupEnv(name); ok {
				return v, nil
			}
			return "", fmt.Errorf("credential %s is not set", name)
		}
	}
	if o.Redact == nil {
		o.Redact = func(s string) string { return s }
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Executable == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		o.Executable = exe
	}
	for _, d := range []string{"logs", "audit", "run", "sandboxes", "state"} {
		if err := os.MkdirAll(filepath.Join(o.Home, d), 0o700); err != nil {
			return nil, fmt.Errorf("runtime: %w", err)
		}
	}
	// The home holds credentials, state and every sandbox's data: no
	// other local user may even list it (R10), however it was created.
	if err := os.Chmod(o.Home, 0o700); err != nil {
		return nil, fmt.Errorf("runtime: make %s private: %w", o.Home, err)
	}
	r := &Runtime{opts: o, log: o.Logger, runs: map[string]*run{}, volumes: map[string]*volume.Volume{}, registry: prometheus.NewRegistry(), schemas: plugins.NewSchemaCache()}
	var err error
	stateURL := o.StateURL
	if stateURL == "" {
		stateURL = filepath.Join(o.Home, "state.db")
	}
	if r.db, err = state.OpenURL(ctx, stateURL); err != nil {
		return nil, err
	}
	// Usage goes where the state goes: with PostgreSQL state every replica
	// of a daemon in a cluster records into, and reads from, one table.
	if state.IsPostgresURL(o.StateURL) {
		r.usage, err = inference.OpenPostgresUsage(ctx, o.StateURL)
	} else {
		r.usage, err = inference.OpenSQLiteUsage(filepath.Join(o.Home, inference.UsageFileName))
	}
	if err != nil {
		r.db.Close()
		return nil, err
	}
	if o.Drivers == nil {
		// Every running sandbox holds its init stage: the small binary when
		// it is installed.
		initExe, err := beside(o, "nemoclave-sandbox-init")
		if err != nil {
			r.Close(ctx)
			return nil, err
		}
		d, err := local.New(local.Config{StateRoot: filepath.Join(o.Home, "sandboxes"), DaemonHome: o.Home, CgroupParent: cgroupParent(o.Home),
			Binary: o.Executable, Executable: initExe})
		if err != nil {
			r.Close(ctx)
			return nil, err
		}
		o.Drivers = map[string]sandbox.Driver{"local": d}
		r.opts.Drivers = o.Drivers
	}
	r.drivers = o.Drivers
	r.pluginLog = &pluginLogFiles{dir: filepath.Join(o.Home, "logs"), max: pluginLogMaxBytes}
	logf := managerLog{files: r.pluginLog, path: filepath.Join(o.Home, "logs", "plugins.log")}
	r.pool = newPluginPool(r.pluginLog, o.PluginIdleTTL, r.log)
	r.pluginOpts = plugins.Options{
		Home: o.Home, BinDir: o.PluginBinDir,
		Logger: hclog.New(&hclog.LoggerOptions{Name: "nemoclave", Output: logf, JSONFormat: true, Level: hclog.Info}),
	}
	if o.ConfinePlugins {
		if r.pluginOpts.Box, err = pluginBox(o); err != nil {
			r.Close(ctx)
			return nil, err
		}
	}
	if r.plugins, err = plugins.New(r.pluginOpts); err != nil {
		r.Close(ctx)
		return nil, err
	}
	if r.metrics, err = inference.NewMetrics(r.registry); err != nil {
		r.Close(ctx)
		return nil, err
	}
	ecfg, err := egressConfig(o)
	if err != nil {
		r.Close(ctx)
		return nil, err
	}
	ecfg.Registry, ecfg.OnPersist = r.registry, r.persistPolicy
	// Each sandbox's inspection CA is kept in the state, so every replica
	// sharing it, and this daemon after a restart, inspect with the CA
	// the sandbox trusts (docs/kubernetes.md, "Replicas").
	ecfg.CAStore = r.db
	if r.egress, err = egress.New(ecfg); err != nil {
		r.Close(ctx)
		return nil, err
	}
	if err := r.reconcile(ctx); err != nil {
		r.Close(ctx)
		return nil, err
	}
	r.startSharedSync()
	r.startHandRunServing()
	return r, nil
}

// outliver is a driver whose sandboxes do not depend on the daemon that
// started them (the kubernetes driver: pods run on their nodes).
type outliver interface {
	SandboxesOutliveDaemon() bool
}

// reconcile marks sandboxes that were running under an earlier daemon. The
// local driver's sandboxes die with their supervisor, so they are lost: the
// record stays, truthfully, until the operator deletes it.
//
// A driver whose sandboxes outlive the daemon is left alone: its sandboxes
// still run, and with shared state (PostgreSQL) they may be another
// replica's. A replica's start says nothing about them; their lifecycle is
// the owning run's and the leader's (host/controller), and views ask the
// driver.
func (r *Runtime) reconcile(ctx context.Context) error {
	recs, err := r.db.Sandboxes(ctx)
	if err != nil {
		return err
	}
	for _, s := range recs {
		if s.State != string(sandbox.StateRunning) && s.State != string(sandbox.StateCreated) {
			continue
		}
		if o, ok := r.drivers[s.Driver].(outliver); ok && o.SandboxesOutliveDaemon() {
			continue
		}
		st, reason := string(sandbox.StateLost), "the daemon restarted while the sandbox was running"
		if d, ok := r.drivers[s.Driver]; ok {
			if info, err := d.Status(ctx, s.Name); err == nil && info.State != sandbox.StateRunning {
				st = string(info.State)
				if info.Reason != "" {
					reason = info.Reason
				}
			}
		}
		if err := r.db.SetSandboxState(ctx, s.Name, st, -1, reason); err != nil {
			return err
		}
	}
	return nil
}

// persistPolicy records a revision the egress proxy made from an approval
// answered with "persist".
func (r *Runtime) persistPolicy(ctx context.Context, sandboxID string, p *policy.Policy) error {
	return r.db.AddRevision(ctx, sandboxID, "approval", p)
}

// Registry exposes the gateway's Prometheus metrics.
func (r *Runtime) Registry() *prometheus.Registry { return r.registry }

// Close stops every run, then the shared parts.
func (r *Runtime) Close(ctx context.Context) error {
	if r.hand.stop != nil {
		r.hand.stop()
	}
	r.mu.Lock()
	runs := make([]*run, 0, len(r.runs))
	for _, rn := range r.runs {
		runs = append(runs, rn)
	}
	r.mu.Unlock()
	for _, rn := range runs {
		rn.stop(ctx, "the daemon stopped")
	}
	if r.stopSync != nil {
		r.stopSync()
	}
	if r.egress != nil {
		r.egress.Close()
	}
	if r.pool != nil {
		r.pool.shutdown()
	}
	if r.plugins != nil {
		r.plugins.Close()
	}
	if r.usage != nil {
		r.usage.Close()
	}
	if r.db != nil {
		r.db.Close()
	}
	return nil
}

func since(t time.Time) int64 { return time.Since(t).Milliseconds() }

// cgroupParent is where this daemon's sandboxes and plugin boxes get their
// cgroups: one parent per home, so two daemons (two users, or tests) may
// both run a sandbox called "assistant". A daemon that is not root uses the
// cgroups `nemoclave setup --user NAME` delegated to it when they exist;
// otherwise the default, below the daemon's own cgroup, serves a
// systemd-delegated subtree.
func cgroupParent(home string) string {
	sum := sha256.Sum256([]byte(home))
	parent := "nemoclave-" + hex.EncodeToString(sum[:4])
	if uid := os.Geteuid(); uid != 0 && confine.HasUserCgroup(uid) {
		parent = filepath.Join(confine.UserCgroupParent(uid), parent)
	}
	return parent
}
