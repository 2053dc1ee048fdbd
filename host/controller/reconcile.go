//go:build kubernetes

package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	pb "github.com/nemoclave/nemoclave/host/api/daemonpb"
	"github.com/nemoclave/nemoclave/host/daemon"
	"github.com/nemoclave/nemoclave/sandbox"
)

// Runtime is what the controller needs of the daemon's runtime
// (*runtime.Runtime): the same calls `nemoclave run -d --replace` and
// `nemoclave sandbox delete` make.
type Runtime interface {
	Run(ctx context.Context, req daemon.RunRequest, ev daemon.RunEvents) error
	DeleteSandbox(ctx context.Context, name string) (*pb.DeleteSandboxResponse, error)
	ListSandboxes(ctx context.Context) ([]*pb.Sandbox, error)
}

// retryAfter is how soon a failed run (not an invalid blueprint, which
// waits for a change) is tried again.
const retryAfter = time.Minute

// Reconciler runs AgentEnvironments through the daemon's runtime.
type Reconciler struct {
	Client client.Client
	// Reader reads straight from the API server: the resource being
	// reconciled (never a stale copy) and the ConfigMaps it names.
	Reader   client.Reader
	Runtime  Runtime
	Driver   sandbox.Driver // the kubernetes driver: sandboxes another replica created
	Home     string         // the daemon's home; blueprints are written below it
	Identity string
	Events   events.EventRecorder
}

// dir is where an AgentEnvironment's blueprint files are written: a path
// per resource, so that the runtime's rule "a sandbox belongs to the
// blueprint at one path" keeps two resources from taking each other's
// sandboxes.
func (r *Reconciler) dir(ae *AgentEnvironment) string {
	return filepath.Join(r.Home, "agentenvironments", ae.Namespace, ae.Name)
}

// Reconcile brings one AgentEnvironment's sandboxes to its spec.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	// Read past the cache: a reconcile queued by this controller's own
	// status write may otherwise see the resource from before it and run
	// the blueprint a second time, replacing the pods it just made.
	var ae AgentEnvironment
	if err := r.Reader.Get(ctx, req.NamespacedName, &ae); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !ae.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.finalize(ctx, &ae)
	}
	if controllerutil.AddFinalizer(&ae, Finalizer) {
		if err := r.Client.Update(ctx, &ae); err != nil {
			return ctrl.Result{}, err
		}
	}
	files, key, err := r.source(ctx, &ae)
	if err != nil {
		r.setConditions(&ae, metav1.ConditionFalse, ReasonSourceError, err.Error())
		r.event(&ae, corev1.EventTypeWarning, ReasonSourceError, err.Error())
		return ctrl.Result{RequeueAfter: retryAfter}, r.writeStatus(ctx, &ae)
	}
	hash := digest(files, key, ae.Spec.Variables)
	path := filepath.Join(r.dir(&ae), key)

	if ae.Status.ObservedGeneration == ae.Generation && ae.Status.BlueprintHash == hash &&
		meta.IsStatusConditionTrue(ae.Status.Conditions, ConditionReady) {
		// Already run, perhaps by the replica that led before this one:
		// keep sandboxes that still exist instead of recreating them.
		missing, err := r.missing(ctx, ae.Status.Sandboxes)
		if err != nil {
			return ctrl.Result{}, err
		}
		if len(missing) == 0 {
			if ae.Status.ReconciledBy != r.Identity {
				msg := fmt.Sprintf("sandboxes %s adopted by %s", strings.Join(ae.Status.Sandboxes, ", "), r.Identity)
				meta.SetStatusCondition(&ae.Status.Conditions, metav1.Condition{Type: ConditionReady, Status: metav1.ConditionTrue, Reason: ReasonAdopted, Message: msg, ObservedGeneration: ae.Generation})
				r.event(&ae, corev1.EventTypeNormal, ReasonAdopted, msg)
				return ctrl.Result{}, r.writeStatus(ctx, &ae)
			}
			return ctrl.Result{}, nil
		}
		r.event(&ae, corev1.EventTypeWarning, ReasonSandboxesGone, "sandboxes "+strings.Join(missing, ", ")+" are gone; running the blueprint again")
	}

	if err := writeFiles(r.dir(&ae), files); err != nil {
		return ctrl.Result{}, err
	}
	// Sandboxes of an earlier generation that this daemon's state does not
	// know (another replica ran them) would make the driver refuse the new
	// ones with "exists": remove them the way the replica would have.
	if err := r.deleteUnknown(ctx, ae.Status.Sandboxes); err != nil {
		return ctrl.Result{}, err
	}
	ev := &runEvents{}
	runErr := r.Runtime.Run(ctx, daemon.RunRequest{Path: path, Vars: ae.Spec.Variables, Detach: true, Replace: true}, ev)
	ae.Status.ObservedGeneration = ae.Generation
	if runErr != nil {
		reason := ReasonRunFailed
		if ev.failed == "evaluate blueprint" {
			reason = ReasonInvalid
		}
		// The runtime names the file it was given; the user knows the
		// resource, not the daemon's copy of it.
		msg := strings.ReplaceAll(runErr.Error(), r.dir(&ae)+string(filepath.Separator), "")
		r.setConditions(&ae, metav1.ConditionFalse, reason, msg)
		if reason == ReasonRunFailed {
			meta.SetStatusCondition(&ae.Status.Conditions, metav1.Condition{Type: ConditionValid, Status: metav1.ConditionTrue, Reason: ReasonValid, Message: "the blueprint evaluates", ObservedGeneration: ae.Generation})
		}
		r.event(&ae, corev1.EventTypeWarning, reason, msg)
		if err := r.writeStatus(ctx, &ae); err != nil {
			return ctrl.Result{}, err
		}
		if reason == ReasonInvalid {
			return ctrl.Result{}, nil // a new generation or ConfigMap brings it back
		}
		return ctrl.Result{RequeueAfter: retryAfter}, nil
	}
	now, err := r.sandboxesOf(ctx, path)
	if err != nil {
		return ctrl.Result{}, err
	}
	// An update that drops a sandbox from the blueprint deletes it.
	for _, old := range ae.Status.Sandboxes {
		if !contains(now, old) {
			if err := r.deleteSandbox(ctx, old); err != nil {
				return ctrl.Result{}, err
			}
		}
	}
	ae.Status.Sandboxes, ae.Status.BlueprintHash = now, hash
	msg := fmt.Sprintf("sandboxes %s created by %s", strings.Join(now, ", "), r.Identity)
	meta.SetStatusCondition(&ae.Status.Conditions, metav1.Condition{Type: ConditionValid, Status: metav1.ConditionTrue, Reason: ReasonValid, Message: "the blueprint evaluates", ObservedGeneration: ae.Generation})
	meta.SetStatusCondition(&ae.Status.Conditions, metav1.Condition{Type: ConditionReady, Status: metav1.ConditionTrue, Reason: ReasonCreated, Message: msg, ObservedGeneration: ae.Generation})
	r.event(&ae, corev1.EventTypeNormal, ReasonCreated, msg)
	return ctrl.Result{}, r.writeStatus(ctx, &ae)
}

// finalize deletes the resource's sandboxes, then lets it go.
func (r *Reconciler) finalize(ctx context.Context, ae *AgentEnvironment) error {
	if !controllerutil.ContainsFinalizer(ae, Finalizer) {
		return nil
	}
	names := append([]string(nil), ae.Status.Sandboxes...)
	if ours, err := r.sandboxesOf(ctx, filepath.Join(r.dir(ae), "x")); err == nil {
		for _, n := range ours {
			if !contains(names, n) {
				names = append(names, n)
			}
		}
	}
	for _, n := range names {
		if err := r.deleteSandbox(ctx, n); err != nil {
			r.event(ae, corev1.EventTypeWarning, "DeleteFailed", err.Error())
			return err
		}
	}
	if err := os.RemoveAll(r.dir(ae)); err != nil {
		return err
	}
	controllerutil.RemoveFinalizer(ae, Finalizer)
	return r.Client.Update(ctx, ae)
}

// deleteSandbox deletes through the runtime, or through the driver when
// this daemon's state does not know the sandbox (another replica made it).
func (r *Reconciler) deleteSandbox(ctx context.Context, name string) error {
	known, err := r.known(ctx)
	if err != nil {
		return err
	}
	if _, ok := known[name]; ok {
		_, err := r.Runtime.DeleteSandbox(ctx, name)
		return err
	}
	if r.Driver == nil {
		return nil
	}
	if err := r.Driver.Delete(ctx, name); err != nil && !errors.Is(err, sandbox.ErrNotFound) {
		return fmt.Errorf("delete sandbox %s: %w", name, err)
	}
	return nil
}

// deleteUnknown deletes, through the driver, the named sandboxes this
// daemon's state has no record of.
func (r *Reconciler) deleteUnknown(ctx context.Context, names []string) error {
	known, err := r.known(ctx)
	if err != nil {
		return err
	}
	for _, n := range names {
		if _, ok := known[n]; !ok {
			if err := r.deleteSandbox(ctx, n); err != nil {
				return err
			}
		}
	}
	return nil
}

// missing are the named sandboxes that exist neither in this daemon's state
// nor in the cluster.
func (r *Reconciler) missing(ctx context.Context, names []string) ([]string, error) {
	known, err := r.known(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range names {
		if v, ok := known[n]; ok && v.State != string(sandbox.StateLost) {
			continue
		}
		if r.Driver != nil {
			info, err := r.Driver.Status(ctx, n)
			if err == nil && info.State != sandbox.StateLost {
				continue
			}
			if err != nil && !errors.Is(err, sandbox.ErrNotFound) {
				return nil, err
			}
		}
		out = append(out, n)
	}
	return out, nil
}

func (r *Reconciler) known(ctx context.Context) (map[string]*pb.Sandbox, error) {
	list, err := r.Runtime.ListSandboxes(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*pb.Sandbox, len(list))
	for _, s := range list {
		out[s.Name] = s
	}
	return out, nil
}

// sandboxesOf are the sandboxes the runtime recorded for the blueprint at
// path (any file in the resource's directory).
func (r *Reconciler) sandboxesOf(ctx context.Context, path string) ([]string, error) {
	known, err := r.known(ctx)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	var out []string
	for name, s := range known {
		if filepath.Dir(filepath.Clean(s.Blueprint)) == dir {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out, nil
}

// source returns the blueprint's files and which of them is the blueprint.
func (r *Reconciler) source(ctx context.Context, ae *AgentEnvironment) (map[string][]byte, string, error) {
	s := ae.Spec
	switch {
	case s.Blueprint != "" && s.ConfigMapRef != nil:
		return nil, "", errors.New("spec.blueprint and spec.configMapRef are both set: keep one")
	case s.Blueprint != "":
		return map[string][]byte{"blueprint.hcl": []byte(s.Blueprint)}, "blueprint.hcl", nil
	case s.ConfigMapRef != nil:
		key := s.ConfigMapRef.Key
		if key == "" {
			key = "blueprint.hcl"
		}
		var cm corev1.ConfigMap
		err := r.Reader.Get(ctx, types.NamespacedName{Namespace: ae.Namespace, Name: s.ConfigMapRef.Name}, &cm)
		if apierrors.IsNotFound(err) {
			return nil, "", fmt.Errorf("ConfigMap %s/%s named by spec.configMapRef does not exist: create it (kubectl create configmap %s --from-file=blueprint.hcl)", ae.Namespace, s.ConfigMapRef.Name, s.ConfigMapRef.Name)
		}
		if err != nil {
			return nil, "", fmt.Errorf("read ConfigMap %s/%s: %w", ae.Namespace, s.ConfigMapRef.Name, err)
		}
		files := map[string][]byte{}
		for k, v := range cm.Data {
			files[k] = []byte(v)
		}
		for k, v := range cm.BinaryData {
			files[k] = v
		}
		if _, ok := files[key]; !ok {
			return nil, "", fmt.Errorf("ConfigMap %s/%s has no key %q: put the blueprint there or set spec.configMapRef.key", ae.Namespace, s.ConfigMapRef.Name, key)
		}
		return files, key, nil
	default:
		return nil, "", errors.New("the spec carries no blueprint: set spec.blueprint (HCL) or spec.configMapRef")
	}
}

// writeFiles replaces dir's content with files. ConfigMap keys cannot
// contain a slash, so every file lands directly in dir.
func writeFiles(dir string, files map[string][]byte) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for name, b := range files {
		if name != filepath.Base(name) || name == "." || name == ".." {
			return fmt.Errorf("file name %q is not a plain file name", name)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// digest identifies what was run: the files, which one is the blueprint,
// and the variables.
func digest(files map[string][]byte, key string, vars map[string]string) string {
	h := sha256.New()
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(h, "key %q\n", key)
	for _, n := range names {
		fmt.Fprintf(h, "file %q %d\n", n, len(files[n]))
		h.Write(files[n])
	}
	vn := make([]string, 0, len(vars))
	for n := range vars {
		vn = append(vn, n)
	}
	sort.Strings(vn)
	for _, n := range vn {
		fmt.Fprintf(h, "var %q %q\n", n, vars[n])
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (r *Reconciler) setConditions(ae *AgentEnvironment, valid metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&ae.Status.Conditions, metav1.Condition{Type: ConditionValid, Status: valid, Reason: reason, Message: msg, ObservedGeneration: ae.Generation})
	meta.SetStatusCondition(&ae.Status.Conditions, metav1.Condition{Type: ConditionReady, Status: metav1.ConditionFalse, Reason: reason, Message: msg, ObservedGeneration: ae.Generation})
}

func (r *Reconciler) writeStatus(ctx context.Context, ae *AgentEnvironment) error {
	ae.Status.ReconciledBy = r.Identity
	for i := range ae.Status.Conditions {
		// The API server caps a condition message at 32768 bytes.
		if m := ae.Status.Conditions[i].Message; len(m) > 32000 {
			ae.Status.Conditions[i].Message = m[:32000] + "…"
		}
	}
	return r.Client.Status().Update(ctx, ae)
}

func (r *Reconciler) event(ae *AgentEnvironment, kind, reason, msg string) {
	if r.Events == nil {
		return
	}
	if len(msg) > 1000 {
		msg = msg[:1000] + "…"
	}
	r.Events.Eventf(ae, nil, kind, reason, "Reconcile", "%s", msg)
}

// runEvents remembers which step of a run failed.
type runEvents struct{ failed string }

func (e *runEvents) Step(s daemon.Step) {
	if s.Phase == "failed" && e.failed == "" {
		e.failed = s.Name
	}
}
func (e *runEvents) Output([]byte)            {}
func (e *runEvents) Exit(string, int, string) {}

// Console is ignored: a resource's run is detached, nobody types into it.
func (e *runEvents) Console(string, bool) {}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
