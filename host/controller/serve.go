//go:build kubernetes

package controller

import (
	"context"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nemoclave/nemoclave/host/daemon"
)

// Server is what every replica needs of the runtime to serve sandboxes
// another replica runs (*runtime.Runtime).
type Server interface {
	ServeRunning(ctx context.Context, req daemon.RunRequest, names []string) ([]string, error)
	StopServing(names ...string)
	// Serves says "run" (this replica started it), "served" or "".
	Serves(name string) string
}

// podUIDs is the kubernetes driver's view of sandbox pods.
type podUIDs interface {
	PodUID(name string) string
}

const (
	// serveResync is how often a replica checks that it still serves
	// every running sandbox (pods replaced without a status change).
	serveResync = 30 * time.Second
	// serveSoon is the retry while the leader has not caught up (a new
	// ConfigMap, a pod the informer has not seen yet).
	serveSoon = 2 * time.Second
)

// serving runs on every replica, leader or not, and needs no Lease: for
// each AgentEnvironment whose sandboxes the leader reports Ready it makes
// this replica's gateway serve them (Server.ServeRunning), from the same
// blueprint, so that whichever replica the gateway Service sends a pod's
// connection to answers it. After a replica restarts, or a leader
// change, the sandboxes are served again without being recreated.
type serving struct {
	reader client.Reader
	src    *Reconciler // source() and dir(): the blueprint as the leader reads it
	server Server
	pods   podUIDs
	home   string
	log    *slog.Logger

	mu     sync.Mutex
	served map[types.NamespacedName]servedSet
}

// servedSet is what a replica serves of one resource: the blueprint hash
// and pod UIDs it configured them for, and the sandbox names.
type servedSet struct {
	key   string
	names []string
}

func (s *serving) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var ae AgentEnvironment
	if err := s.reader.Get(ctx, req.NamespacedName, &ae); client.IgnoreNotFound(err) != nil {
		return ctrl.Result{}, err
	} else if err != nil || !ae.DeletionTimestamp.IsZero() {
		s.forget(req.NamespacedName, nil)
		return ctrl.Result{}, nil
	}
	st := ae.Status
	if st.BlueprintHash == "" || st.ObservedGeneration != ae.Generation || !meta.IsStatusConditionTrue(st.Conditions, ConditionReady) {
		// The leader has not run this generation (yet, or it failed):
		// keep serving what runs until it has.
		return ctrl.Result{RequeueAfter: serveResync}, nil
	}
	files, key, err := s.src.source(ctx, &ae)
	if err != nil {
		return ctrl.Result{RequeueAfter: serveSoon}, nil
	}
	if digest(files, key, ae.Spec.Variables) != st.BlueprintHash {
		// Changed since the leader ran it: it runs it again and reports.
		return ctrl.Result{RequeueAfter: serveSoon}, nil
	}
	s.forget(req.NamespacedName, st.Sandboxes)
	var want, uids []string
	soon := false
	for _, n := range st.Sandboxes {
		uid := s.pods.PodUID(n)
		uids = append(uids, uid)
		switch {
		case s.server.Serves(n) == "run":
		case uid == "":
			soon = true // created and not yet in the informer, or gone
		default:
			want = append(want, n)
		}
	}
	setKey := st.BlueprintHash + "|" + strings.Join(uids, ",")
	s.mu.Lock()
	prev := s.served[req.NamespacedName]
	s.mu.Unlock()
	upToDate := prev.key == setKey
	for _, n := range want {
		upToDate = upToDate && s.server.Serves(n) == "served"
	}
	if len(want) == 0 || upToDate {
		s.remember(req.NamespacedName, servedSet{key: setKey, names: st.Sandboxes})
		return s.after(soon), nil
	}
	dir := filepath.Join(s.home, "agentenvironments-served", ae.Namespace, ae.Name)
	if err := writeFiles(dir, files); err != nil {
		return ctrl.Result{}, err
	}
	served, err := s.server.ServeRunning(ctx, daemon.RunRequest{Path: filepath.Join(dir, key), Vars: ae.Spec.Variables, Detach: true}, want)
	if len(served) > 0 {
		s.log.Info("serving the sandboxes of an AgentEnvironment", "agentenvironment", req.String(), "sandboxes", strings.Join(served, ","))
	}
	if err != nil {
		s.log.Warn("cannot serve the sandboxes of an AgentEnvironment; retrying", "agentenvironment", req.String(), "err", err.Error())
		return ctrl.Result{RequeueAfter: serveSoon}, nil
	}
	s.remember(req.NamespacedName, servedSet{key: setKey, names: st.Sandboxes})
	return s.after(soon), nil
}

func (s *serving) after(soon bool) ctrl.Result {
	if soon {
		return ctrl.Result{RequeueAfter: serveSoon}
	}
	return ctrl.Result{RequeueAfter: serveResync}
}

func (s *serving) remember(nn types.NamespacedName, set servedSet) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.served[nn] = set
}

// forget stops serving the sandboxes of nn that are not in keep.
func (s *serving) forget(nn types.NamespacedName, keep []string) {
	s.mu.Lock()
	prev := s.served[nn]
	if keep == nil {
		delete(s.served, nn)
	}
	s.mu.Unlock()
	var drop []string
	for _, n := range prev.names {
		if !slices.Contains(keep, n) && s.server.Serves(n) == "served" {
			drop = append(drop, n)
		}
	}
	s.server.StopServing(drop...)
}
