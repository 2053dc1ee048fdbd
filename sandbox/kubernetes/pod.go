package kubernetes

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/nemoclave/nemoclave/policy"
	"github.com/nemoclave/nemoclave/sandbox"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// Reserved labels. Objects carrying LabelManagedBy=ManagedBy belong to this
// driver; the rest of the cluster is never touched.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "nemoclave"
	LabelSandbox   = "nemoclave.dev/sandbox"
	LabelComponent = "app.kubernetes.io/component"
	// ComponentSandbox marks sandbox objects; the sandbox NetworkPolicy
	// selects pods by it.
	ComponentSandbox = "sandbox"
)

// Paths inside the sandbox pod.
const (
	configDir    = "/etc/nemoclave/sandbox"
	configFile   = "config.json"
	identityDir  = "/run/nemoclave-identity"
	identityFile = "token"
	workspaceDir = "/workspace"
	tmpDir       = "/tmp"
	// sandboxUID is the unprivileged user everything in the pod runs as.
	sandboxUID = 65532
	// tokenSeconds is the projected token's lifetime; the kubelet rotates
	// it at 80%, and the supervisor re-reads the file for every connection.
	tokenSeconds = 3600
)

// listenerPorts are the 127.0.0.1 ports the supervisor listens on inside the
// pod (the pod is its own network namespace, so fixed ports are safe).
var listenerPorts = map[string]int{
	sandbox.ListenerEgress:    15001,
	sandbox.ListenerInference: 15002,
	sandbox.ListenerAgentAPI:  15003,
}

// objectName is the name of every object of one sandbox.
func objectName(sandboxName string) string { return "nc-" + sandboxName }

func sandboxLabels(name string) map[string]string {
	return map[string]string{LabelManagedBy: ManagedBy, LabelSandbox: name, LabelComponent: ComponentSandbox}
}

// supervisorConfig is what the in-pod supervisor reads from its ConfigMap.
// It never holds a credential: the gateway injects those.
type supervisorConfig struct {
	Name      string            `json:"name"`
	Command   []string          `json:"command"`
	Env       map[string]string `json:"env,omitempty"`
	Policy    *policy.Policy    `json:"policy"`
	Listeners map[string]int    `json:"listeners"`
	// Gateway is the Front's address, an IP and port: the pod has no DNS.
	Gateway   string `json:"gateway"`
	TokenFile string `json:"token_file"`
	// GatewayCA (PEM) and GatewayServerName make the supervisor speak TLS
	// to the Front and verify it; empty means plain TCP.
	GatewayCA         string `json:"gateway_ca,omitempty"`
	GatewayServerName string `json:"gateway_server_name,omitempty"`
	Workspace         string `json:"workspace"`
	// CreatedAt and Timeout let a restarted daemon report the sandbox.
	CreatedAt      metav1.Time       `json:"created_at"`
	TimeoutSeconds int64             `json:"timeout_seconds,omitempty"`
	Resources      sandbox.Resources `json:"resources"`
	// Kubernetes are the blueprint's overrides of the driver's defaults.
	Kubernetes *SandboxConfig `json:"kubernetes,omitempty"`
}

// configMap carries the supervisor configuration and the trust files (CA
// bundles) the agent's environment points at, each mounted at the path it
// names.
func (d *Driver) configMap(cfg *supervisorConfig, files map[string][]byte, owner []metav1.OwnerReference) (*corev1.ConfigMap, error) {
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: objectName(cfg.Name), Namespace: d.opts.Namespace, Labels: sandboxLabels(cfg.Name), OwnerReferences: owner},
		Data:       map[string]string{configFile: string(b)},
		BinaryData: map[string][]byte{},
	}
	for i, p := range sortedKeys(files) {
		cm.BinaryData["trust-"+strconv.Itoa(i)] = files[p]
	}
	return cm, nil
}

// pod builds the sandbox pod. Every field Pod Security Admission
// "restricted" checks is set explicitly, so the pod is admitted even in a
// namespace that enforces the profile, and nothing depends on defaults the
// cluster might change.
func (d *Driver) pod(cfg *supervisorConfig, trust []string, owner []metav1.OwnerReference) *corev1.Pod {
	name := objectName(cfg.Name)
	set := d.settings(cfg.Kubernetes)
	seccomp := &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}
	res := d.resources(cfg.Resources)
	mounts := []corev1.VolumeMount{
		{Name: "config", MountPath: configDir, ReadOnly: true},
		{Name: "identity", MountPath: identityDir, ReadOnly: true},
		{Name: "workspace", MountPath: workspaceDir},
		{Name: "tmp", MountPath: tmpDir},
	}
	cmItems := []corev1.KeyToPath{{Key: configFile, Path: configFile}}
	for i, p := range trust {
		key := "trust-" + strconv.Itoa(i)
		mounts = append(mounts, corev1.VolumeMount{Name: "config", MountPath: p, SubPath: key, ReadOnly: true})
		cmItems = append(cmItems, corev1.KeyToPath{Key: key, Path: key})
	}
	workspace := corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}
	if b := cfg.Resources.WorkspaceBytes; b > 0 {
		// The kubelet evicts the pod past it (P11).
		workspace.EmptyDir.SizeLimit = resource.NewQuantity(b, resource.BinarySI)
	}
	if set.StorageBytes > 0 {
		workspace = corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: name}}
	}
	tmpLimit := resource.NewQuantity(256<<20, resource.BinarySI)
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: d.opts.Namespace, Labels: sandboxLabels(cfg.Name), OwnerReferences: owner},
		Spec: corev1.PodSpec{
			ServiceAccountName:            name,
			AutomountServiceAccountToken:  ptr.To(false),
			EnableServiceLinks:            ptr.To(false),
			RestartPolicy:                 corev1.RestartPolicyNever,
			RuntimeClassName:              nonEmpty(set.RuntimeClass),
			NodeSelector:                  set.NodeSelector,
			Tolerations:                   set.Tolerations,
			Affinity:                      set.Affinity,
			TopologySpreadConstraints:     set.TopologySpreadConstraints,
			HostNetwork:                   false,
			HostPID:                       false,
			HostIPC:                       false,
			ShareProcessNamespace:         ptr.To(false),
			TerminationGracePeriodSeconds: ptr.To(int64(10)),
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:   ptr.To(true),
				RunAsUser:      ptr.To(int64(sandboxUID)),
				RunAsGroup:     ptr.To(int64(sandboxUID)),
				FSGroup:        ptr.To(int64(sandboxUID)),
				SeccompProfile: seccomp,
			},
			Containers: []corev1.Container{{
				Name:            "sandbox",
				Image:           set.Image,
				ImagePullPolicy: corev1.PullIfNotPresent,
				Command:         []string{d.opts.SupervisorPath, SupervisorCommand, "run"},
				WorkingDir:      workspaceDir,
				Resources:       res,
				VolumeMounts:    mounts,
				SecurityContext: &corev1.SecurityContext{
					RunAsNonRoot:             ptr.To(true),
					RunAsUser:                ptr.To(int64(sandboxUID)),
					AllowPrivilegeEscalation: ptr.To(false),
					Privileged:               ptr.To(false),
					ReadOnlyRootFilesystem:   ptr.To(true),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
					SeccompProfile:           seccomp,
					ProcMount:                ptr.To(corev1.DefaultProcMount),
				},
				TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
			}},
			Volumes: []corev1.Volume{
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: name}, Items: cmItems, DefaultMode: ptr.To(int32(0o444)),
				}}},
				{Name: "identity", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
					DefaultMode: ptr.To(int32(0o400)),
					Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
						Audience: d.opts.Audience, ExpirationSeconds: ptr.To(int64(tokenSeconds)), Path: identityFile,
					}}},
				}}},
				{Name: "workspace", VolumeSource: workspace},
				{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: tmpLimit}}},
			},
		},
	}
	if cfg.TimeoutSeconds > 0 {
		p.Spec.ActiveDeadlineSeconds = ptr.To(cfg.TimeoutSeconds)
	}
	return p
}

// resources maps the blueprint's limits; requests equal limits so the
// scheduler reserves what the sandbox may use (Guaranteed QoS).
func (d *Driver) resources(r sandbox.Resources) corev1.ResourceRequirements {
	cpus, mem := r.CPUs, r.MemoryBytes
	if cpus == 0 {
		cpus = d.opts.DefaultCPUs
	}
	if mem == 0 {
		mem = d.opts.DefaultMemoryBytes
	}
	l := corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewMilliQuantity(int64(cpus*1000), resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity(mem, resource.BinarySI),
	}
	return corev1.ResourceRequirements{Limits: l, Requests: l.DeepCopy()}
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// podInfo turns the pod the informer last saw into the driver's Info.
func podInfo(name string, created metav1.Time, p *corev1.Pod) sandbox.Info {
	info := sandbox.Info{Name: name, Driver: DriverName, State: sandbox.StateCreated, CreatedAt: created.Time, ExitCode: -1, Ports: copyPorts()}
	if p == nil {
		return info
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason != "" {
			info.Reason = fmt.Sprintf("not scheduled: %s: %s", c.Reason, c.Message)
		}
	}
	var cs *corev1.ContainerStatus
	for i := range p.Status.ContainerStatuses {
		if p.Status.ContainerStatuses[i].Name == "sandbox" {
			cs = &p.Status.ContainerStatuses[i]
		}
	}
	if cs != nil {
		switch {
		case cs.State.Running != nil:
			info.State = sandbox.StateRunning
			info.StartedAt = cs.State.Running.StartedAt.Time
		case cs.State.Terminated != nil:
			t := cs.State.Terminated
			info.State = sandbox.StateExited
			info.StartedAt, info.ExitedAt = t.StartedAt.Time, t.FinishedAt.Time
			info.ExitCode = int(t.ExitCode)
			if t.Signal != 0 {
				info.ExitCode, info.Signal = -1, "signal "+strconv.Itoa(int(t.Signal))
			}
			switch t.Reason {
			case "", "Completed":
			case "Error":
				if t.Message != "" {
					info.Reason = "error: " + t.Message
				}
			case "OOMKilled":
				info.Reason = "out of memory (OOMKilled): raise the sandbox's memory limit"
			default:
				info.Reason = t.Reason
				if t.Message != "" {
					info.Reason += ": " + t.Message
				}
			}
		case cs.State.Waiting != nil && fatalWaiting[cs.State.Waiting.Reason]:
			info.State = sandbox.StateExited
			info.Reason = fmt.Sprintf("start failed: %s: %s", cs.State.Waiting.Reason, cs.State.Waiting.Message)
		}
	}
	switch p.Status.Phase {
	case corev1.PodFailed:
		info.State = sandbox.StateExited
		switch p.Status.Reason {
		case "DeadlineExceeded":
			info.Reason = "timeout"
		case "":
			if info.Reason == "" && info.ExitCode == 0 {
				info.Reason = "failed: " + p.Status.Message
			}
		default:
			info.Reason = p.Status.Reason
			if p.Status.Message != "" {
				info.Reason += ": " + p.Status.Message
			}
		}
	case corev1.PodSucceeded:
		info.State = sandbox.StateExited
	}
	if p.DeletionTimestamp != nil && info.State != sandbox.StateExited {
		info.Reason = "terminating"
	}
	return info
}

// fatalWaiting are container waiting reasons that will not resolve without
// a change to the image or the cluster, so the sandbox is reported exited.
var fatalWaiting = map[string]bool{
	"InvalidImageName": true, "ErrImageNeverPull": true, "CreateContainerConfigError": true,
	"CreateContainerError": true, "ImagePullBackOff": true, "RunContainerError": true,
}

func copyPorts() map[string]int {
	m := make(map[string]int, len(listenerPorts))
	for k, v := range listenerPorts {
		m[k] = v
	}
	return m
}
