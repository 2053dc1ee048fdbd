package kubernetes

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nemoclave/nemoclave/policy"
	"github.com/nemoclave/nemoclave/sandbox"
	"github.com/nemoclave/nemoclave/sandbox/confine"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
)

// DriverName is the name blueprints use: driver = "kubernetes".
const DriverName = "kubernetes"

// Options configures the driver. Client, Namespace and Image are required.
type Options struct {
	// Client talks to the API server; Config is the same connection as a
	// REST config, needed for pods/exec (Exec, Attach).
	Client kubernetes.Interface
	Config *rest.Config
	// Namespace holds the sandbox pods. Label it to enforce Pod Security
	// Admission "restricted": the pods are built to pass it.
	Namespace string
	// Image runs the supervisor and the agent: it must contain the
	// nemoclave binary at SupervisorPath and whatever the agent command
	// needs.
	Image string
	// SupervisorPath is the nemoclave binary in Image; default
	// /usr/local/bin/nemoclave.
	SupervisorPath string
	// RuntimeClassName selects a sandboxed runtime (gvisor, kata) when set.
	RuntimeClassName string
	// StorageBytes > 0 puts the workspace on a PersistentVolumeClaim of
	// that size (StorageClass, or the cluster default); otherwise it is an
	// emptyDir that dies with the pod.
	StorageBytes int64
	StorageClass string
	NodeSelector map[string]string
	// Scheduling places every sandbox pod (tolerations for a tainted
	// sandbox node pool, affinity, topology spread); a blueprint's
	// kubernetes {} block adds tolerations and replaces the rest.
	Scheduling Scheduling
	// DefaultCPUs and DefaultMemoryBytes apply when the blueprint sets no
	// limit (1 CPU, 1 GiB). Pods always get limits: an unbounded sandbox
	// could starve its node.
	DefaultCPUs        float64
	DefaultMemoryBytes int64
	// Audience of the projected tokens the gateway accepts; default
	// "nemoclave-gateway". A token for another audience is refused.
	Audience string
	// GatewayNamespace, GatewayService and GatewayPort locate the Front:
	// the supervisor dials the Service's cluster IP (no DNS in the pod).
	// GatewayAddress ("ip:port") overrides the lookup.
	GatewayNamespace string
	GatewayService   string
	GatewayPort      int
	GatewayAddress   string
	// FrontCA (PEM) is the CA of the Front's TLS certificate; when set,
	// sandbox pods speak TLS to the Front and verify its certificate for
	// FrontServerName (default <GatewayService>.<GatewayNamespace>.svc),
	// so their token never crosses the pod network in clear. The Front's
	// listener must then be a TLS listener (tls.NewListener).
	FrontCA         []byte
	FrontServerName string
	// GatewayPodLabels select the gateway pods in the sandbox
	// NetworkPolicy; default app.kubernetes.io/name=nemoclave,
	// app.kubernetes.io/component=gateway.
	GatewayPodLabels map[string]string
	// Front serves the sandboxes' connections; Start needs it.
	Front  *Front
	Logger *slog.Logger
	// KeepPodsOnShutdown: once the context given to New has ended (the
	// daemon is shutting down, e.g. a rolling update), Stop only detaches
	// the sandbox from this replica's Front and leaves its pod running for
	// the replica that adopts it. Delete always deletes.
	KeepPodsOnShutdown bool
}

// Driver implements sandbox.Driver on a Kubernetes cluster.
type Driver struct {
	opts Options
	w    *watcher
	ctx  context.Context // New's: done once the daemon shuts down

	mu      sync.Mutex
	stopped map[string]sandbox.Info // sandboxes whose pod Stop deleted
	started map[string]bool
}

var _ sandbox.Driver = (*Driver)(nil)

// New checks the options and starts the pod informer; it returns once the
// informer has synced. ctx bounds the informer's life.
func New(ctx context.Context, o Options) (*Driver, error) {
	if o.Client == nil || o.Namespace == "" || o.Image == "" {
		return nil, errors.New("kubernetes driver: a client, a namespace and an image are required (daemon flags --kubeconfig, --kubernetes-namespace, --kubernetes-image)")
	}
	if o.SupervisorPath == "" {
		o.SupervisorPath = "/usr/local/bin/nemoclave"
	}
	if o.DefaultCPUs == 0 {
		o.DefaultCPUs = 1
	}
	if o.DefaultMemoryBytes == 0 {
		o.DefaultMemoryBytes = 1 << 30
	}
	if o.Audience == "" {
		o.Audience = "nemoclave-gateway"
	}
	if o.GatewayNamespace == "" {
		o.GatewayNamespace = o.Namespace
	}
	if o.GatewayService == "" {
		o.GatewayService = "nemoclave-gateway"
	}
	if o.GatewayPort == 0 {
		o.GatewayPort = 7443
	}
	if o.GatewayPodLabels == nil {
		o.GatewayPodLabels = map[string]string{"app.kubernetes.io/name": "nemoclave", "app.kubernetes.io/component": "gateway"}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if len(o.FrontCA) > 0 {
		if !x509.NewCertPool().AppendCertsFromPEM(o.FrontCA) {
			return nil, errors.New("kubernetes driver: the Front CA holds no PEM certificate; pass the CA that signed the gateway's TLS certificate")
		}
		if o.FrontServerName == "" {
			o.FrontServerName = o.GatewayService + "." + o.GatewayNamespace + ".svc"
		}
	}
	d := &Driver{opts: o, ctx: ctx, stopped: map[string]sandbox.Info{}, started: map[string]bool{}}
	var err error
	if d.w, err = newWatcher(d); err != nil {
		return nil, err
	}
	if err := d.w.start(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

// trustEnv are variables whose value names a CA bundle the agent must see;
// the driver ships each file in the sandbox ConfigMap at the same path.
var trustEnv = []string{"SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO"}

func validate(spec *sandbox.Spec) error {
	var errs []error
	if err := sandbox.ValidName(spec.Name); err != nil {
		errs = append(errs, err)
	}
	if len(spec.Command) == 0 || spec.Command[0] == "" {
		errs = append(errs, errors.New("no agent command: set the agent's command"))
	}
	if err := sandbox.CheckFiles(spec.Files); err != nil {
		errs = append(errs, err)
	}
	if spec.Policy == nil {
		errs = append(errs, errors.New("no policy: a sandbox never starts without an explicit policy block"))
	} else if err := spec.Policy.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("invalid policy, the sandbox refuses to start: %w", err))
	} else {
		errs = append(errs, checkIdentityHidden(spec.Policy))
	}
	r := spec.Resources
	if r.CPUs < 0 || r.MemoryBytes < 0 || r.Pids < 0 {
		errs = append(errs, errors.New("resources must not be negative"))
	}
	if r.MemoryBytes > 0 && r.MemoryBytes < 16<<20 {
		errs = append(errs, fmt.Errorf("memory %d bytes is below the 16 MiB the sandbox itself needs", r.MemoryBytes))
	}
	seen := map[string]bool{}
	for _, l := range spec.Listeners {
		if _, ok := listenerPorts[l.Name]; !ok {
			errs = append(errs, fmt.Errorf("listener %q: the kubernetes driver knows %q, %q and %q", l.Name,
				sandbox.ListenerEgress, sandbox.ListenerInference, sandbox.ListenerAgentAPI))
		}
		if seen[l.Name] {
			errs = append(errs, fmt.Errorf("listener %q requested twice", l.Name))
		}
		seen[l.Name] = true
	}
	for k := range spec.Env {
		errs = append(errs, confine.CheckEnvName(k))
	}
	return errors.Join(errs...)
}

// checkIdentityHidden refuses a policy that would let the agent read the
// pod's gateway token: with it, the agent could speak to the gateway
// without the supervisor, which is harmless for identity (it is the same
// sandbox) but would let it copy the token out through an allowed host.
func checkIdentityHidden(p *policy.Policy) error {
	for _, path := range append(append([]string(nil), p.Filesystem.ReadOnly...), p.Filesystem.ReadWrite...) {
		c := filepath.Clean(path)
		if c == identityDir || strings.HasPrefix(identityDir, strings.TrimSuffix(c, "/")+"/") {
			return fmt.Errorf("policy grants %s, which holds the sandbox's gateway token on Kubernetes: list narrower paths (for example /usr, /etc, /workspace)", path)
		}
	}
	return nil
}

// Create validates the spec and records the sandbox as its ServiceAccount,
// ConfigMap, NetworkPolicy and (with StorageBytes) PersistentVolumeClaim.
// No pod exists until Start. Spec.Workspace is ignored: on Kubernetes the
// workspace is an emptyDir or a PVC.
func (d *Driver) Create(ctx context.Context, spec sandbox.Spec) (sandbox.Info, error) {
	if err := validate(&spec); err != nil {
		return sandbox.Info{}, err
	}
	k, err := DecodeDriverConfig(spec.DriverConfig)
	if err != nil {
		return sandbox.Info{}, fmt.Errorf("sandbox %s: %w", spec.Name, err)
	}
	gw, err := d.gatewayAddress(ctx)
	if err != nil {
		return sandbox.Info{}, err
	}
	trust := map[string][]byte{}
	for _, k := range trustEnv {
		p := spec.Env[k]
		if p == "" || !filepath.IsAbs(p) {
			continue
		}
		if _, ok := trust[p]; ok {
			continue
		}
		if f, ok := specFile(spec.Files, p); ok {
			b, err := sandbox.ReadFile(f)
			if err != nil {
				return sandbox.Info{}, err
			}
			trust[p] = b
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return sandbox.Info{}, fmt.Errorf("%s=%s: the driver ships this file into the pod but cannot read it: %w", k, p, err)
		}
		trust[p] = b
	}
	ports := map[string]int{}
	for _, l := range spec.Listeners {
		ports[l.Name] = listenerPorts[l.Name]
	}
	cfg := &supervisorConfig{
		Name: spec.Name, Command: spec.Command, Env: spec.Env, Policy: spec.Policy, Listeners: ports,
		Gateway: gw, TokenFile: identityDir + "/" + identityFile, Workspace: workspaceDir,
		GatewayCA: string(d.opts.FrontCA), GatewayServerName: d.opts.FrontServerName,
		CreatedAt: metav1.Now(), TimeoutSeconds: int64(spec.Timeout / time.Second), Resources: spec.Resources,
		Kubernetes: k,
	}
	if k.Namespace != "" && k.Namespace != d.opts.Namespace {
		return sandbox.Info{}, fmt.Errorf("sandbox %s asks for namespace %q, but this daemon's kubernetes driver serves %q; run a daemon per sandbox namespace (--kubernetes-namespace) or drop the setting", spec.Name, k.Namespace, d.opts.Namespace)
	}
	set := d.settings(k)
	name := objectName(spec.Name)
	sa, err := d.opts.Client.CoreV1().ServiceAccounts(d.opts.Namespace).Create(ctx, &corev1.ServiceAccount{
		ObjectMeta:                   metav1.ObjectMeta{Name: name, Namespace: d.opts.Namespace, Labels: sandboxLabels(spec.Name)},
		AutomountServiceAccountToken: ptr.To(false),
	}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return sandbox.Info{}, fmt.Errorf("%w: %s (delete it first, or pick another name)", sandbox.ErrExists, spec.Name)
	}
	if err != nil {
		return sandbox.Info{}, d.apiError("create the sandbox's service account", err)
	}
	owner := []metav1.OwnerReference{{APIVersion: "v1", Kind: "ServiceAccount", Name: sa.Name, UID: sa.UID}}
	fail := func(what string, err error) (sandbox.Info, error) {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = d.deleteObjects(cctx, spec.Name)
		return sandbox.Info{}, d.apiError(what, err)
	}
	cm, err := d.configMap(cfg, trust, owner)
	if err != nil {
		return fail("encode the supervisor config", err)
	}
	if _, err := d.opts.Client.CoreV1().ConfigMaps(d.opts.Namespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		return fail("create the sandbox's config map", err)
	}
	if _, err := d.opts.Client.NetworkingV1().NetworkPolicies(d.opts.Namespace).Create(ctx, d.networkPolicy(spec.Name, owner), metav1.CreateOptions{}); err != nil {
		return fail("create the sandbox's network policy", err)
	}
	if set.StorageBytes > 0 {
		pvc := &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: d.opts.Namespace, Labels: sandboxLabels(spec.Name), OwnerReferences: owner},
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				StorageClassName: nonEmpty(set.StorageClass),
				Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceStorage: *resource.NewQuantity(set.StorageBytes, resource.BinarySI)}},
			},
		}
		if _, err := d.opts.Client.CoreV1().PersistentVolumeClaims(d.opts.Namespace).Create(ctx, pvc, metav1.CreateOptions{}); err != nil {
			return fail("create the sandbox's workspace volume claim", err)
		}
	}
	d.mu.Lock()
	delete(d.stopped, spec.Name)
	delete(d.started, spec.Name)
	d.mu.Unlock()
	return podInfo(spec.Name, sa.CreationTimestamp, nil), nil
}

// gatewayAddress is the Front's "ip:port" as pods dial it.
func (d *Driver) gatewayAddress(ctx context.Context) (string, error) {
	if d.opts.GatewayAddress != "" {
		return d.opts.GatewayAddress, nil
	}
	svc, err := d.opts.Client.CoreV1().Services(d.opts.GatewayNamespace).Get(ctx, d.opts.GatewayService, metav1.GetOptions{})
	if err != nil {
		return "", d.apiError("look up the gateway service "+d.opts.GatewayNamespace+"/"+d.opts.GatewayService+" (deploy/base creates it)", err)
	}
	if svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone {
		return "", fmt.Errorf("gateway service %s/%s has no cluster IP: sandbox pods dial an IP (they have no DNS); make it a ClusterIP service", svc.Namespace, svc.Name)
	}
	return net.JoinHostPort(svc.Spec.ClusterIP, strconv.Itoa(d.opts.GatewayPort)), nil
}

// config reads back what Create recorded.
func (d *Driver) config(ctx context.Context, name string) (*supervisorConfig, *corev1.ServiceAccount, error) {
	sa, err := d.opts.Client.CoreV1().ServiceAccounts(d.opts.Namespace).Get(ctx, objectName(name), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil, fmt.Errorf("%w: %s", sandbox.ErrNotFound, name)
	}
	if err != nil {
		return nil, nil, d.apiError("read the sandbox", err)
	}
	if sa.Labels[LabelManagedBy] != ManagedBy {
		return nil, nil, fmt.Errorf("%w: %s (a service account of that name exists but nemoclave does not manage it)", sandbox.ErrNotFound, name)
	}
	cm, err := d.opts.Client.CoreV1().ConfigMaps(d.opts.Namespace).Get(ctx, objectName(name), metav1.GetOptions{})
	if err != nil {
		return nil, nil, d.apiError("read the sandbox's config map", err)
	}
	var cfg supervisorConfig
	if err := json.Unmarshal([]byte(cm.Data[configFile]), &cfg); err != nil {
		return nil, nil, fmt.Errorf("sandbox %s: its config map is damaged (%w); delete and create the sandbox again", name, err)
	}
	return &cfg, sa, nil
}

// Start creates the pod and returns its gateway listeners, fed by the
// Front once a connection proves it comes from this pod. It does not wait
// for the pod to run: Status and Wait report that, and WaitRunning waits.
func (d *Driver) Start(ctx context.Context, name string) (*sandbox.Started, error) {
	if d.opts.Front == nil {
		return nil, errors.New("kubernetes driver: no gateway front is configured, so the sandbox could not reach the gateway; start the daemon with --kubernetes-front-address")
	}
	cfg, sa, err := d.config(ctx, name)
	if err != nil {
		return nil, err
	}
	var trust []string
	for _, k := range trustEnv {
		if p := cfg.Env[k]; p != "" && filepath.IsAbs(p) && !contains(trust, p) {
			trust = append(trust, p)
		}
	}
	sort.Strings(trust)
	owner := []metav1.OwnerReference{{APIVersion: "v1", Kind: "ServiceAccount", Name: sa.Name, UID: sa.UID}}
	pod, err := d.opts.Client.CoreV1().Pods(d.opts.Namespace).Create(ctx, d.pod(cfg, trust, owner), metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("sandbox %s was already started; delete it and create it again to restart", name)
	}
	if apierrors.IsForbidden(err) {
		return nil, fmt.Errorf("sandbox %s: the API server refused the pod (namespace %s must allow Pod Security \"restricted\" pods and the daemon needs create on pods): %w", name, d.opts.Namespace, err)
	}
	if err != nil {
		return nil, d.apiError("create the sandbox pod", err)
	}
	return d.serve(name, cfg, sa, pod), nil
}

// serve routes the Front's connections from pod (the sandbox's current
// one) to new listeners, records the sandbox as started here, and returns
// what Start and Reattach return.
func (d *Driver) serve(name string, cfg *supervisorConfig, sa *corev1.ServiceAccount, pod *corev1.Pod) *sandbox.Started {
	lns := d.opts.Front.register(name, d.opts.Namespace, sa.Name, pod.UID, sortedKeys(cfg.Listeners))
	d.mu.Lock()
	d.started[name] = true
	delete(d.stopped, name)
	d.mu.Unlock()
	out := &sandbox.Started{Info: podInfo(name, sa.CreationTimestamp, pod), Listeners: map[string]net.Listener{}}
	out.Info.Ports = cfg.Listeners
	for n, l := range lns {
		out.Listeners[n] = l
	}
	return out
}

// SandboxesOutliveDaemon is true: a pod runs on its node whatever happens
// to the daemon that created it, so a daemon's restart never marks one
// lost (the runtime's reconcile skips them).
func (d *Driver) SandboxesOutliveDaemon() bool { return true }

// Status reports one sandbox from the informer's view of its pod.
func (d *Driver) Status(ctx context.Context, name string) (sandbox.Info, error) {
	sa, err := d.opts.Client.CoreV1().ServiceAccounts(d.opts.Namespace).Get(ctx, objectName(name), metav1.GetOptions{})
	if apierrors.IsNotFound(err) || (err == nil && sa.Labels[LabelManagedBy] != ManagedBy) {
		return sandbox.Info{}, fmt.Errorf("%w: %s", sandbox.ErrNotFound, name)
	}
	if err != nil {
		return sandbox.Info{}, d.apiError("read the sandbox", err)
	}
	return d.info(name, sa.CreationTimestamp), nil
}

func (d *Driver) info(name string, created metav1.Time) sandbox.Info {
	p := d.w.pod(d.opts.Namespace, name)
	d.mu.Lock()
	stopped, isStopped := d.stopped[name]
	started := d.started[name]
	d.mu.Unlock()
	info := podInfo(name, created, p)
	if isStopped && (p == nil || p.DeletionTimestamp != nil) {
		// Stop deleted the pod: report the exit the kubelet recorded, if
		// it got that far, as stopped.
		if info.State != sandbox.StateExited {
			return stopped
		}
		if info.Reason == "" {
			info.Reason = "stopped"
		}
		return info
	}
	if p == nil && started {
		info.State, info.Reason = sandbox.StateLost, "the sandbox pod disappeared (deleted or evicted) before its exit was recorded"
	}
	return info
}

// List reports every sandbox in the namespace, including ones an earlier
// daemon created.
func (d *Driver) List(ctx context.Context) ([]sandbox.Info, error) {
	sas, err := d.opts.Client.CoreV1().ServiceAccounts(d.opts.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: LabelManagedBy + "=" + ManagedBy + "," + LabelComponent + "=" + ComponentSandbox})
	if err != nil {
		return nil, d.apiError("list sandboxes", err)
	}
	out := make([]sandbox.Info, 0, len(sas.Items))
	for _, sa := range sas.Items {
		out = append(out, d.info(sa.Labels[LabelSandbox], sa.CreationTimestamp))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Wait blocks until the agent has exited (or its pod is gone).
func (d *Driver) Wait(ctx context.Context, name string) (sandbox.Info, error) {
	for {
		changed := d.w.next(name)
		info, err := d.Status(ctx, name)
		if err != nil {
			return info, err
		}
		if info.State == sandbox.StateExited || info.State == sandbox.StateLost {
			return info, nil
		}
		select {
		case <-ctx.Done():
			return info, ctx.Err()
		case <-changed:
		case <-time.After(30 * time.Second):
		}
	}
}

// WaitRunning blocks until the sandbox's container runs, or returns its
// failure (for example an image that cannot be pulled). While it waits it
// reports the pod's phase and its last event (sandbox.ReportProgress).
func (d *Driver) WaitRunning(ctx context.Context, name string) (sandbox.Info, error) {
	// Events (pulling an image, no node with room) do not change the pod:
	// whoever watches is told of them at this pace.
	every := 30 * time.Second
	watched := sandbox.HasProgress(ctx)
	if watched {
		every = 2 * time.Second
	}
	reported := ""
	for {
		changed := d.w.next(name)
		info, err := d.Status(ctx, name)
		if err != nil {
			return info, err
		}
		switch info.State {
		case sandbox.StateRunning:
			return info, nil
		case sandbox.StateExited, sandbox.StateLost:
			return info, fmt.Errorf("%w: %s exited before it ran: %s", sandbox.ErrNotRunning, name, info.Reason)
		}
		if watched {
			if msg := d.podProgress(ctx, name); msg != reported {
				sandbox.ReportProgress(ctx, msg)
				reported = msg
			}
		}
		select {
		case <-ctx.Done():
			return info, fmt.Errorf("sandbox %s is not running yet (%s): %w", name, info.Reason, ctx.Err())
		case <-changed:
		case <-time.After(every):
		}
	}
}

// UpdatePolicy records the new revision in the sandbox's ConfigMap, so a
// sandbox created again from it starts with it. The network part is the
// gateway's to enforce; a running pod's Landlock never widens.
func (d *Driver) UpdatePolicy(ctx context.Context, name string, p *policy.Policy) error {
	if p == nil {
		return errors.New("no policy: a sandbox never runs without one")
	}
	if err := p.Validate(); err != nil {
		return fmt.Errorf("invalid policy: %w", err)
	}
	if err := checkIdentityHidden(p); err != nil {
		return err
	}
	cfg, _, err := d.config(ctx, name)
	if err != nil {
		return err
	}
	cfg.Policy = p
	b, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	patch, _ := json.Marshal(map[string]any{"data": map[string]string{configFile: string(b)}})
	if _, err := d.opts.Client.CoreV1().ConfigMaps(d.opts.Namespace).Patch(ctx, objectName(name), "application/merge-patch+json", patch, metav1.PatchOptions{}); err != nil {
		return d.apiError("record the policy revision", err)
	}
	return nil
}

// apiError adds what the daemon was doing and what usually fixes it.
func (d *Driver) apiError(doing string, err error) error {
	switch {
	case apierrors.IsForbidden(err):
		return fmt.Errorf("kubernetes: %s in namespace %s was forbidden; grant the daemon's service account the role in deploy/base/rbac.yaml: %w", doing, d.opts.Namespace, err)
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("kubernetes: %s: the API server did not accept the daemon's credentials; check --kubeconfig or the in-cluster service account: %w", doing, err)
	}
	return fmt.Errorf("kubernetes: %s: %w", doing, err)
}

func (f *Front) unregisterIfSet(name string) {
	if f != nil {
		f.unregister(name)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// specFile returns the spec file at sandbox path p. The pod
// carries the spec's files that the agent's trust variables name (the
// gateway's CA bundle); each is mounted from the ConfigMap at its path.
func specFile(files []sandbox.File, p string) (sandbox.File, bool) {
	for _, f := range files {
		if f.Path == p {
			return f, true
		}
	}
	return sandbox.File{}, false
}

// Reattach serves a sandbox whose pod already runs, created by this
// daemon before it restarted or by another replica: it routes the
// Front's connections from the sandbox's current pod to the listeners it
// returns, as Start does for the pod it creates. Every replica calls it
// for every running sandbox, so a pod's connections, which the gateway
// Service spreads over the replicas, are answered wherever they land. A
// later pod of the same sandbox (replaced by the leader) needs another
// Reattach: the route is bound to the pod's UID.
func (d *Driver) Reattach(ctx context.Context, name string) (*sandbox.Started, error) {
	if d.opts.Front == nil {
		return nil, errors.New("kubernetes driver: no gateway front is configured, so the sandbox could not reach this replica; start the daemon with --kubernetes-front-address")
	}
	cfg, sa, err := d.config(ctx, name)
	if err != nil {
		return nil, err
	}
	pod, err := d.opts.Client.CoreV1().Pods(d.opts.Namespace).Get(ctx, objectName(name), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("%w: sandbox %s has no pod to serve", sandbox.ErrNotRunning, name)
	}
	if err != nil {
		return nil, d.apiError("read the sandbox pod", err)
	}
	if pod.DeletionTimestamp != nil || pod.Labels[LabelSandbox] != name {
		return nil, fmt.Errorf("%w: the pod of sandbox %s is being deleted or is not its own", sandbox.ErrNotRunning, name)
	}
	return d.serve(name, cfg, sa, pod), nil
}

// Detach stops serving a sandbox Reattach served, leaving its pod alone
// (another replica owns its lifecycle).
func (d *Driver) Detach(name string) {
	d.opts.Front.unregisterIfSet(name)
	d.mu.Lock()
	delete(d.started, name)
	d.mu.Unlock()
}

// PodUID is the UID of the sandbox's current pod as this daemon's
// informer sees it; empty when there is none.
func (d *Driver) PodUID(name string) string {
	if p := d.w.pod(d.opts.Namespace, name); p != nil && p.DeletionTimestamp == nil {
		return string(p.UID)
	}
	return ""
}
