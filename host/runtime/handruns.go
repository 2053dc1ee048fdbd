package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/nemoclave/nemoclave/blueprints"
	pb "github.com/nemoclave/nemoclave/host/api/daemonpb"
	"github.com/nemoclave/nemoclave/host/daemon"
	"github.com/nemoclave/nemoclave/host/state"
	"github.com/nemoclave/nemoclave/sandbox"
)

// Hand runs on replicas. A sandbox started by hand (`nemoclave run`) with
// the kubernetes driver on a daemon whose replicas share their state
// (PostgreSQL) is served by every replica, as the sandboxes of an
// AgentEnvironment are: its pod's connections reach whichever replica the
// gateway Service picks. The replica that runs it keeps its blueprint in
// the state as an upload (the remote-run format: the blueprint's
// directory, its var files and variable values; the same bounds), and
// every replica's serving loop writes that upload into its home and
// serves the running sandboxes from it, evaluated confined to it as an
// uploaded blueprint is. A run whose blueprint cannot be evaluated so is
// refused, unless the user asks for it to be served by one replica only.

// handRunPoll is how often a replica looks for hand runs to serve.
const handRunPoll = time.Second

// handRunRetry is how long a replica waits before it tries again to serve
// a hand run it failed to serve.
const handRunRetry = 10 * time.Second

// handRunSpec is what the state keeps of a hand run's blueprint.
type handRunSpec struct {
	// Upload is the blueprint's directory (pb.Upload, protobuf).
	Upload []byte `json:"upload"`
	// VarFiles are paths inside the upload.
	VarFiles []string          `json:"var_files,omitempty"`
	Vars     map[string]string `json:"vars,omitempty"`
	VarEnv   map[string]string `json:"var_env,omitempty"`
}

// handRuns is a replica's serving of other replicas' hand runs.
type handRuns struct {
	mu sync.Mutex
	// served is what this replica serves (or failed to serve), by sandbox.
	served map[string]handServed
	stop   func()
}

type handServed struct {
	digest string
	key    string // digest and pod UID
	failed time.Time
}

// sharesHandRuns says whether a hand run of bp is kept for the other
// replicas: the state is shared and a sandbox's driver outlives its daemon.
func (r *Runtime) sharesHandRuns(bp *blueprints.Blueprint) bool {
	if !r.db.Shared() {
		return false
	}
	for _, a := range bp.Agents {
		if sb := bp.Sandbox(a.Sandbox); sb != nil {
			if _, ok := r.drivers[sb.Driver].(reattacher); ok {
				return true
			}
		}
	}
	return false
}

// packHandRun packs a hand run's blueprint for the other replicas and
// evaluates the pack as they will (confined to it). It returns the record
// to store (Sandbox unset), or why the other replicas cannot serve it.
func (r *Runtime) packHandRun(ctx context.Context, bp *blueprints.Blueprint, req daemon.RunRequest) (*state.HandRun, error) {
	if req.ReattachPlugins != "" {
		return nil, errors.New("it uses debug plugins (NEMOCLAVE_REATTACH_PLUGINS), which run beside this replica only")
	}
	u, varFiles := req.Upload, []string(nil)
	if u != nil {
		for _, vf := range req.VarFiles {
			rel, err := filepath.Rel(req.Root, vf)
			if err != nil {
				return nil, err
			}
			varFiles = append(varFiles, filepath.ToSlash(rel))
		}
	} else {
		var err error
		if u, varFiles, err = daemon.PackUpload(req.Path, req.VarFiles); err != nil {
			return nil, err
		}
	}
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(u)
	if err != nil {
		return nil, err
	}
	spec, err := json.Marshal(handRunSpec{Upload: data, VarFiles: varFiles, Vars: req.Vars, VarEnv: req.VarEnv})
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(spec)
	h := &state.HandRun{Digest: hex.EncodeToString(sum[:]), Spec: spec}
	// Evaluate it as every other replica will, from where they write it
	// (a stable path: the plugins' config verdicts are cached by config,
	// and the config names it). The serving loop prunes it unless the run
	// keeps it; the lock keeps the loop from pruning it meanwhile.
	if err := os.MkdirAll(r.handRunsDir(), 0o700); err != nil {
		return nil, err
	}
	r.hand.mu.Lock()
	defer r.hand.mu.Unlock()
	dir := filepath.Join(r.handRunsDir(), h.Digest[:32])
	if _, err := os.Stat(dir); err != nil {
		if err := daemon.WriteUpload(dir, u); err != nil {
			return nil, err
		}
	}
	other, err := r.evaluate(ctx, handRunRequest(dir, u, handRunSpec{VarFiles: varFiles, Vars: req.Vars, VarEnv: req.VarEnv}))
	if err != nil {
		// evaluate names the upload's directory; the user knows the files
		// by their paths in the blueprint's directory.
		msg := err.Error()
		if head, diags, ok := strings.Cut(msg, ":\n"); ok && strings.Contains(head, dir) {
			msg = diags
		}
		msg = strings.TrimRight(strings.ReplaceAll(msg, dir+string(filepath.Separator), ""), "\n")
		return nil, fmt.Errorf("evaluated from a copy of its directory it has errors:\n%s", msg)
	}
	if got, want := runSandboxes(other), runSandboxes(bp); !slices.Equal(got, want) {
		return nil, fmt.Errorf("evaluated from a copy of its directory it declares the sandboxes %v, not %v", got, want)
	}
	return h, nil
}

// shareHandRun is the run step that decides how a hand run is served: by
// every replica (the blueprint is kept in the state; *h is set), or, with
// --this-replica-only, by this one.
func (r *Runtime) shareHandRun(ctx context.Context, bp *blueprints.Blueprint, req daemon.RunRequest, h **state.HandRun) (string, error) {
	const only = "WARNING: SERVED BY THIS REPLICA ONLY (--this-replica-only): the gateway Service sends some of the agent's connections to the other replicas, which close them, so the agent fails those calls"
	if req.ThisReplicaOnly {
		r.log.Warn("a hand run is served by this replica only (--this-replica-only): its agent fails the calls the Service sends to other replicas", "sandboxes", strings.Join(runSandboxes(bp), ","))
		return only, nil
	}
	packed, err := r.packHandRun(ctx, bp, req)
	if err != nil {
		return "", fmt.Errorf("the other replicas of this daemon (they share its state) could not serve this blueprint's sandboxes: %w\n"+
			"Every replica serves a hand run's sandboxes from a copy of the blueprint's directory, evaluated confined to it as an uploaded blueprint: "+
			"keep the files it reads (file(), templatefile(), cassettes, var files) inside its directory and install plugins instead of naming them by path; "+
			"or run it as an AgentEnvironment (docs/deploy/kubernetes.md); "+
			"or pass --this-replica-only to have it served by this replica alone (its agent then fails the calls the gateway Service sends to the other replicas)", err)
	}
	*h = packed
	return fmt.Sprintf("kept in the state (%d KiB): every replica serves its sandboxes", (len(packed.Spec)+1023)/1024), nil
}

// handRunRequest is the request that evaluates a stored hand run written
// into dir.
func handRunRequest(dir string, u *pb.Upload, s handRunSpec) daemon.RunRequest {
	req := daemon.RunRequest{Path: filepath.Join(dir, filepath.FromSlash(u.Entry)), Root: dir, Vars: s.Vars, VarEnv: s.VarEnv, Detach: true}
	if u.Entry == "." {
		req.Path = dir
	}
	for _, vf := range s.VarFiles {
		req.VarFiles = append(req.VarFiles, filepath.Join(dir, filepath.FromSlash(vf)))
	}
	return req
}

func (r *Runtime) handRunsDir() string { return filepath.Join(r.opts.Home, "handruns") }

// startHandRunServing starts the serving loop when this daemon shares its
// state and has a driver whose sandboxes another daemon may serve.
func (r *Runtime) startHandRunServing() {
	if !r.db.Shared() {
		return
	}
	can := false
	for _, d := range r.drivers {
		if _, ok := d.(reattacher); ok {
			can = true
		}
	}
	if !can {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	r.hand.served = map[string]handServed{}
	r.hand.stop = func() { cancel(); <-done }
	go func() {
		defer close(done)
		t := time.NewTicker(handRunPoll)
		defer t.Stop()
		for {
			if err := r.serveHandRuns(ctx); err != nil && ctx.Err() == nil {
				r.log.Warn("hand runs of other replicas: reading the state", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// podUIDer is a driver that names the current pod of a sandbox.
type podUIDer interface {
	PodUID(name string) string
}

// serveHandRuns makes this replica serve the running hand-run sandboxes
// the state holds that it does not run itself, and stops serving those
// that are gone, stopped or run from another blueprint now.
func (r *Runtime) serveHandRuns(ctx context.Context) error {
	digests, err := r.db.HandRunDigests(ctx)
	if err != nil {
		return err
	}
	recs, err := r.db.Sandboxes(ctx)
	if err != nil {
		return err
	}
	running := map[string]state.Sandbox{}
	for _, s := range recs {
		if s.State == string(sandbox.StateRunning) || s.State == string(sandbox.StateCreated) {
			running[s.Name] = s
		}
	}
	r.hand.mu.Lock()
	defer r.hand.mu.Unlock()
	for name, hs := range r.hand.served {
		if _, ok := running[name]; ok && digests[name] == hs.digest {
			continue
		}
		if r.Serves(name) == "served" {
			r.StopServing(name)
			r.log.Info("no longer serving a hand-run sandbox of another replica", "sandbox", name)
		}
		delete(r.hand.served, name)
	}
	// The sandboxes to serve, by blueprint.
	groups := map[string][]string{}
	keys := map[string]string{}
	for name, digest := range digests {
		rec, ok := running[name]
		if !ok {
			continue
		}
		d, ok := r.drivers[rec.Driver].(reattacher)
		if !ok || r.Serves(name) == "run" {
			continue
		}
		uid := ""
		if p, ok := d.(podUIDer); ok {
			if uid = p.PodUID(name); uid == "" {
				continue // not yet seen, or gone
			}
		}
		key := digest + "|" + uid
		hs, seen := r.hand.served[name]
		switch {
		case !seen || hs.key != key:
		case !hs.failed.IsZero() && time.Since(hs.failed) >= handRunRetry:
		default:
			continue // served once for this pod (its end stops it), or failed lately
		}
		keys[name] = key
		groups[digest] = append(groups[digest], name)
	}
	for digest, names := range groups {
		sort.Strings(names)
		served, err := r.serveHandRun(ctx, digest, names)
		now := time.Now()
		for _, n := range names {
			hs := handServed{digest: digest, key: keys[n]}
			if !slices.Contains(served, n) {
				hs.failed = now
			}
			r.hand.served[n] = hs
		}
		if len(served) > 0 {
			r.log.Info("serving hand-run sandboxes of another replica", "sandboxes", strings.Join(served, ","))
		}
		if err != nil {
			r.log.Warn("cannot serve hand-run sandboxes of another replica; retrying", "sandboxes", strings.Join(names, ","), "err", err)
		}
	}
	r.pruneHandRunDirs(digests)
	return nil
}

// serveHandRun writes the stored blueprint of names (one digest) into
// this replica's home and serves them from it.
func (r *Runtime) serveHandRun(ctx context.Context, digest string, names []string) ([]string, error) {
	h, err := r.db.HandRunSpec(ctx, names[0])
	if err != nil {
		return nil, err
	}
	if h.Digest != digest {
		return nil, errors.New("its blueprint changed meanwhile")
	}
	var s handRunSpec
	if err := json.Unmarshal(h.Spec, &s); err != nil {
		return nil, fmt.Errorf("the stored blueprint: %w", err)
	}
	var u pb.Upload
	if err := proto.Unmarshal(s.Upload, &u); err != nil {
		return nil, fmt.Errorf("the stored blueprint: %w", err)
	}
	dir := filepath.Join(r.handRunsDir(), digest[:32])
	if _, err := os.Stat(dir); err != nil {
		if err := daemon.WriteUpload(dir, &u); err != nil {
			return nil, err
		}
	}
	return r.ServeRunning(ctx, handRunRequest(dir, &u, s), names)
}

// pruneHandRunDirs removes the written blueprints no stored hand run has.
func (r *Runtime) pruneHandRunDirs(digests map[string]string) {
	ents, err := os.ReadDir(r.handRunsDir())
	if err != nil {
		return
	}
	keep := map[string]bool{}
	for _, d := range digests {
		keep[d[:min(32, len(d))]] = true
	}
	for _, e := range ents {
		if e.IsDir() && len(e.Name()) == 32 && !keep[e.Name()] {
			_ = os.RemoveAll(filepath.Join(r.handRunsDir(), e.Name()))
		}
	}
}
