package kubernetes

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/policy"
	"github.com/nemoclave/nemoclave/sandbox"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func testPolicy() *policy.Policy {
	return &policy.Policy{
		Name: "test", Revision: 1, UnknownHosts: policy.UnknownDeny,
		Filesystem: policy.Filesystem{
			ReadOnly:  []string{"/usr", "/bin", "/lib", "/etc"},
			ReadWrite: []string{"/workspace", "/tmp"},
		},
	}
}

func testSpec(name string) sandbox.Spec {
	return sandbox.Spec{
		Name: name, Command: []string{"/usr/local/bin/nemoclave", "agent"}, Policy: testPolicy(),
		Env:       map[string]string{"NEMOCLAVE_MODEL": "test-model"},
		Workspace: "/ignored/on/kubernetes",
		Resources: sandbox.Resources{CPUs: 0.5, MemoryBytes: 256 << 20},
		Listeners: []sandbox.ListenerSpec{{Name: sandbox.ListenerEgress}, {Name: sandbox.ListenerInference}, {Name: sandbox.ListenerAgentAPI}},
	}
}

// createStarted creates and starts a sandbox and returns its pod.
func (d *testDriver) createStarted(t *testing.T, spec sandbox.Spec) (*sandbox.Started, *corev1.Pod) {
	t.Helper()
	ctx := context.Background()
	if _, err := d.Create(ctx, spec); err != nil {
		t.Fatalf("Create %s: %v", spec.Name, err)
	}
	st, err := d.Start(ctx, spec.Name)
	if err != nil {
		t.Fatalf("Start %s (the API server must admit the pod under enforced PSA restricted): %v", spec.Name, err)
	}
	p, err := d.client.CoreV1().Pods(d.ns).Get(ctx, objectName(spec.Name), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return st, p
}

// setStatus plays the kubelet: it writes the pod's status.
func (d *testDriver) setStatus(t *testing.T, name string, mutate func(*corev1.PodStatus)) {
	t.Helper()
	ctx := context.Background()
	p, err := d.client.CoreV1().Pods(d.ns).Get(ctx, objectName(name), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mutate(&p.Status)
	if _, err := d.client.CoreV1().Pods(d.ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update pod status: %v", err)
	}
}

func TestPodAdmittedUnderEnforcedRestricted(t *testing.T) {
	d := newTestDriver(t)
	ctx := context.Background()
	ca := filepath.Join(t.TempDir(), "ca-bundle.pem")
	if err := os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\ntest\n-----END CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := testSpec("admitted")
	spec.Env["SSL_CERT_FILE"] = ca
	spec.Timeout = 90 * time.Second
	_, p := d.createStarted(t, spec)

	s := p.Spec
	c := s.Containers[0]
	checks := map[string]bool{
		"own service account":                      s.ServiceAccountName == "nc-admitted",
		"no automounted API token":                 s.AutomountServiceAccountToken != nil && !*s.AutomountServiceAccountToken,
		"no host namespaces":                       !s.HostNetwork && !s.HostPID && !s.HostIPC,
		"runAsNonRoot":                             s.SecurityContext.RunAsNonRoot != nil && *s.SecurityContext.RunAsNonRoot,
		"RuntimeDefault seccomp":                   s.SecurityContext.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault,
		"no privilege escalation":                  c.SecurityContext.AllowPrivilegeEscalation != nil && !*c.SecurityContext.AllowPrivilegeEscalation,
		"read-only root":                           c.SecurityContext.ReadOnlyRootFilesystem != nil && *c.SecurityContext.ReadOnlyRootFilesystem,
		"drop ALL":                                 len(c.SecurityContext.Capabilities.Drop) == 1 && c.SecurityContext.Capabilities.Drop[0] == "ALL" && len(c.SecurityContext.Capabilities.Add) == 0,
		"supervisor command":                       strings.Join(c.Command, " ") == "/usr/local/bin/nemoclave sandbox-supervisor run",
		"limits from the blueprint":                c.Resources.Limits.Cpu().MilliValue() == 500 && c.Resources.Limits.Memory().Value() == 256<<20,
		"timeout as activeDeadlineSeconds":         s.ActiveDeadlineSeconds != nil && *s.ActiveDeadlineSeconds == 90,
		"owned by the sandbox's service account":   len(p.OwnerReferences) == 1 && p.OwnerReferences[0].Kind == "ServiceAccount",
		"reserved labels":                          p.Labels[LabelManagedBy] == ManagedBy && p.Labels[LabelSandbox] == "admitted",
		"no environment from the daemon":           len(c.Env) == 0 && len(c.EnvFrom) == 0,
		"CA bundle mounted where SSL_CERT_FILE is": hasMount(c, ca),
	}
	for what, ok := range checks {
		if !ok {
			t.Errorf("pod: %s does not hold", what)
		}
	}
	var tokenAud string
	for _, v := range s.Volumes {
		if v.Projected != nil {
			tokenAud = v.Projected.Sources[0].ServiceAccountToken.Audience
		}
	}
	if tokenAud != "nemoclave-gateway" {
		t.Errorf("projected token audience = %q, want nemoclave-gateway", tokenAud)
	}

	np, err := d.client.NetworkingV1().NetworkPolicies(d.ns).Get(ctx, "nc-admitted", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("network policy: %v", err)
	}
	if len(np.Spec.PolicyTypes) != 2 || len(np.Spec.Ingress) != 0 || len(np.Spec.Egress) != 1 {
		t.Fatalf("network policy must deny all ingress and allow one egress rule: %+v", np.Spec)
	}
	eg := np.Spec.Egress[0]
	if len(eg.Ports) != 1 || eg.Ports[0].Port.IntValue() != 7443 || eg.To[0].PodSelector.MatchLabels["app.kubernetes.io/component"] != "gateway" {
		t.Errorf("egress rule must allow only the gateway's front port: %+v", eg)
	}
	if np.Spec.PodSelector.MatchLabels[LabelSandbox] != "admitted" {
		t.Errorf("network policy selects %v", np.Spec.PodSelector.MatchLabels)
	}
	cm, err := d.client.CoreV1().ConfigMaps(d.ns).Get(ctx, "nc-admitted", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cm.Data[configFile], `"gateway":"10.96.`) {
		t.Errorf("supervisor config must name the gateway Service's cluster IP: %s", cm.Data[configFile])
	}

	// The control: the same namespace refuses a pod that is not
	// restricted, so the admission above was a real check.
	bad := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "not-restricted"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
	_, err = d.client.CoreV1().Pods(d.ns).Create(ctx, bad, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "PodSecurity") {
		t.Fatalf("a non-restricted pod must be rejected by PodSecurity admission, got %v", err)
	}
}

func hasMount(c corev1.Container, path string) bool {
	for _, m := range c.VolumeMounts {
		if m.MountPath == path && m.ReadOnly && m.SubPath != "" {
			return true
		}
	}
	return false
}

func TestLifecycleFromPodStatus(t *testing.T) {
	d := newTestDriver(t)
	now := metav1.Now()
	cases := []struct {
		name       string
		status     func(*corev1.PodStatus)
		wantCode   int
		wantSignal string
		wantReason string
	}{
		{"exit-zero", func(s *corev1.PodStatus) {
			s.Phase = corev1.PodSucceeded
			s.ContainerStatuses = terminated(corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", StartedAt: now, FinishedAt: now})
		}, 0, "", ""},
		{"exit-three", func(s *corev1.PodStatus) {
			s.Phase = corev1.PodFailed
			s.ContainerStatuses = terminated(corev1.ContainerStateTerminated{ExitCode: 3, Reason: "Error", Message: "agent gave up", StartedAt: now, FinishedAt: now})
		}, 3, "", "error: agent gave up"},
		{"killed", func(s *corev1.PodStatus) {
			s.Phase = corev1.PodFailed
			s.ContainerStatuses = terminated(corev1.ContainerStateTerminated{ExitCode: 137, Signal: 9, Reason: "Error", StartedAt: now, FinishedAt: now})
		}, -1, "signal 9", ""},
		{"oom", func(s *corev1.PodStatus) {
			s.Phase = corev1.PodFailed
			s.ContainerStatuses = terminated(corev1.ContainerStateTerminated{ExitCode: 137, Reason: "OOMKilled", StartedAt: now, FinishedAt: now})
		}, 137, "", "out of memory"},
		{"deadline", func(s *corev1.PodStatus) {
			s.Phase, s.Reason, s.Message = corev1.PodFailed, "DeadlineExceeded", "Pod was active on the node longer than the specified deadline"
		}, -1, "", "timeout"},
		{"bad-image", func(s *corev1.PodStatus) {
			s.Phase = corev1.PodPending
			s.ContainerStatuses = []corev1.ContainerStatus{{Name: "sandbox", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
				Reason: "ImagePullBackOff", Message: "Back-off pulling image"}}}}
		}, -1, "", "start failed: ImagePullBackOff"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			d.createStarted(t, testSpec(tc.name))
			info, err := d.Status(ctx, tc.name)
			if err != nil || info.State != sandbox.StateCreated {
				t.Fatalf("before the kubelet reports: %+v, %v; want created", info, err)
			}
			if tc.name != "bad-image" && tc.name != "deadline" {
				d.setStatus(t, tc.name, func(s *corev1.PodStatus) {
					s.Phase = corev1.PodRunning
					s.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
					s.ContainerStatuses = []corev1.ContainerStatus{{Name: "sandbox", Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}}}
				})
				info, err := d.WaitRunning(ctx, tc.name)
				if err != nil || info.State != sandbox.StateRunning || info.StartedAt.IsZero() {
					t.Fatalf("WaitRunning: %+v, %v", info, err)
				}
			}
			done := make(chan sandbox.Info, 1)
			go func() {
				info, err := d.Wait(ctx, tc.name)
				if err != nil {
					t.Errorf("Wait: %v", err)
				}
				done <- info
			}()
			d.setStatus(t, tc.name, tc.status)
			info = <-done
			if info.State != sandbox.StateExited || info.ExitCode != tc.wantCode || info.Signal != tc.wantSignal || !strings.Contains(info.Reason, tc.wantReason) {
				t.Fatalf("after exit: %+v; want exited, code %d, signal %q, reason containing %q", info, tc.wantCode, tc.wantSignal, tc.wantReason)
			}
		})
	}
}

func terminated(s corev1.ContainerStateTerminated) []corev1.ContainerStatus {
	return []corev1.ContainerStatus{{Name: "sandbox", State: corev1.ContainerState{Terminated: &s}}}
}

func TestDeleteLeavesNothingBehind(t *testing.T) {
	d := newTestDriver(t)
	d.opts.StorageBytes = 1 << 30
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d.createStarted(t, testSpec("doomed"))
	d.createStarted(t, testSpec("kept"))
	if err := d.Stop(ctx, "kept", time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if info, err := d.Status(ctx, "kept"); err != nil || info.State != sandbox.StateExited || info.Reason != "stopped" {
		t.Fatalf("after Stop: %+v, %v", info, err)
	}
	list, err := d.List(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("List = %+v, %v; want two sandboxes", list, err)
	}
	if _, err := d.client.CoreV1().PersistentVolumeClaims(d.ns).Get(ctx, "nc-doomed", metav1.GetOptions{}); err != nil {
		t.Fatalf("the workspace claim was not created: %v", err)
	}
	if err := d.Delete(ctx, "doomed"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	sel := metav1.ListOptions{LabelSelector: LabelSandbox + "=doomed"}
	counts := map[string]func() (int, error){
		"pods": func() (int, error) {
			l, err := d.client.CoreV1().Pods(d.ns).List(ctx, sel)
			return lenOr(l, err, func() int { return len(l.Items) })
		},
		"service accounts": func() (int, error) {
			l, err := d.client.CoreV1().ServiceAccounts(d.ns).List(ctx, sel)
			return lenOr(l, err, func() int { return len(l.Items) })
		},
		"config maps": func() (int, error) {
			l, err := d.client.CoreV1().ConfigMaps(d.ns).List(ctx, sel)
			return lenOr(l, err, func() int { return len(l.Items) })
		},
		"network policies": func() (int, error) {
			l, err := d.client.NetworkingV1().NetworkPolicies(d.ns).List(ctx, sel)
			return lenOr(l, err, func() int { return len(l.Items) })
		},
		// The API server gives every claim the kubernetes.io/pvc-protection
		// finalizer, which the controller manager (not running here)
		// removes once no pod uses it: a claim deleted and waiting only
		// for that is gone as far as the driver is concerned.
		"volume claims": func() (int, error) {
			l, err := d.client.CoreV1().PersistentVolumeClaims(d.ns).List(ctx, sel)
			return lenOr(l, err, func() int {
				n := 0
				for _, c := range l.Items {
					if c.DeletionTimestamp == nil || len(c.Finalizers) != 1 || c.Finalizers[0] != "kubernetes.io/pvc-protection" {
						n++
					}
				}
				return n
			})
		},
	}
	for kind, count := range counts {
		eventually(t, "no "+kind+" left", func() bool { n, err := count(); return err == nil && n == 0 })
	}
	if _, err := d.Status(ctx, "doomed"); !errors.Is(err, sandbox.ErrNotFound) {
		t.Fatalf("Status after Delete = %v, want ErrNotFound", err)
	}
	if err := d.Delete(ctx, "doomed"); !errors.Is(err, sandbox.ErrNotFound) {
		t.Fatalf("second Delete = %v, want ErrNotFound", err)
	}
	if list, _ := d.List(ctx); len(list) != 1 || list[0].Name != "kept" {
		t.Fatalf("List after Delete = %+v", list)
	}
	if _, err := d.Create(ctx, testSpec("kept")); !errors.Is(err, sandbox.ErrExists) {
		t.Fatalf("Create of an existing sandbox = %v, want ErrExists", err)
	}
}

func lenOr(_ any, err error, n func() int) (int, error) {
	if err != nil {
		return 0, err
	}
	return n(), nil
}

func TestExecNeedsARunningPod(t *testing.T) {
	d := newTestDriver(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d.createStarted(t, testSpec("exec"))
	if _, err := d.Exec(ctx, "exec", sandbox.ExecRequest{Command: []string{"true"}}); !errors.Is(err, sandbox.ErrNotRunning) {
		t.Fatalf("Exec before the pod runs = %v, want ErrNotRunning", err)
	}
	if _, err := d.Exec(ctx, "exec", sandbox.ExecRequest{Command: []string{"true"}, Env: map[string]string{"OPENAI_API_KEY": "x"}}); err == nil || !strings.Contains(err.Error(), "credential") {
		t.Fatalf("Exec with a credential-looking variable = %v, want a refusal", err)
	}
	// With the pod "running" the request reaches the API server's
	// pods/exec, which has no kubelet to forward to here: the process
	// must report that error rather than a made-up exit code.
	d.setStatus(t, "exec", func(s *corev1.PodStatus) {
		s.Phase = corev1.PodRunning
		s.ContainerStatuses = []corev1.ContainerStatus{{Name: "sandbox", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}}}
	})
	eventually(t, "running", func() bool { i, _ := d.Status(ctx, "exec"); return i.State == sandbox.StateRunning })
	p, err := d.Exec(ctx, "exec", sandbox.ExecRequest{Command: []string{"true"}, Stdout: new(strings.Builder)})
	if err == nil {
		_, err = p.Wait(ctx)
	}
	if err == nil {
		t.Fatal("exec without a kubelet must fail")
	}
	if _, err := d.Logs(ctx, "no-such-sandbox"); !errors.Is(err, sandbox.ErrNotFound) {
		t.Fatalf("Logs of a missing sandbox = %v, want ErrNotFound", err)
	}
	// A pod no node runs has no log yet: the API server answers empty.
	rc, err := d.Logs(ctx, "exec")
	if err != nil {
		t.Fatalf("Logs: %v", err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || len(b) != 0 {
		t.Fatalf("logs of a pod that never ran = %q, %v", b, err)
	}
}

func TestUpdatePolicyRecordsRevision(t *testing.T) {
	d := newTestDriver(t)
	ctx := context.Background()
	if _, err := d.Create(ctx, testSpec("pol")); err != nil {
		t.Fatal(err)
	}
	p := testPolicy()
	p.Revision = 2
	if err := d.UpdatePolicy(ctx, "pol", p); err != nil {
		t.Fatalf("UpdatePolicy: %v", err)
	}
	cfg, _, err := d.config(ctx, "pol")
	if err != nil || cfg.Policy.Revision != 2 {
		t.Fatalf("recorded policy = %+v, %v", cfg, err)
	}
	wide := testPolicy()
	wide.Filesystem.ReadOnly = append(wide.Filesystem.ReadOnly, "/")
	if err := d.UpdatePolicy(ctx, "pol", wide); err == nil || !strings.Contains(err.Error(), "gateway token") {
		t.Fatalf("a policy exposing the token directory = %v, want a refusal", err)
	}
}
