package kubernetes

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// SandboxConfig is a sandbox's kubernetes {} block: the driver-specific
// settings that reach this driver as sandbox.Spec.DriverConfig (JSON) and
// that only this driver decodes and validates. Empty fields keep the
// driver's defaults (the daemon's --kubernetes-* flags).
//
// Tolerations, Affinity and TopologySpreadConstraints use the Kubernetes
// API's own JSON field names (tolerationSeconds, nodeAffinity, maxSkew…),
// so a snippet copied from a pod spec means the same in a blueprint.
type SandboxConfig struct {
	// Namespace must equal the driver's: one daemon serves one sandbox
	// namespace (its informers, RBAC and NetworkPolicies are scoped to it).
	Namespace    string            `json:"namespace,omitempty"`
	RuntimeClass string            `json:"runtime_class,omitempty"`
	StorageClass string            `json:"storage_class,omitempty"`
	StorageBytes int64             `json:"storage_bytes,omitempty"`
	Image        string            `json:"image,omitempty"`
	NodeSelector map[string]string `json:"node_selector,omitempty"`
	// Tolerations are added to the driver's (a tainted sandbox node pool
	// is tolerated by the daemon's flags; a blueprint adds, say, a GPU
	// pool's).
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
	// Affinity replaces the driver's when set.
	Affinity *corev1.Affinity `json:"affinity,omitempty"`
	// TopologySpreadConstraints replace the driver's when set. A
	// constraint without a labelSelector counts this daemon's sandbox pods.
	TopologySpreadConstraints []corev1.TopologySpreadConstraint `json:"topology_spread_constraints,omitempty"`
}

// DecodeDriverConfig decodes and validates a sandbox's driver settings.
// Unknown fields are errors, not silently dropped: a misspelt
// "tolerationSecond" would otherwise leave a pod unschedulable with no
// word as to why. Empty input is the zero config.
func DecodeDriverConfig(raw json.RawMessage) (*SandboxConfig, error) {
	c := &SandboxConfig{}
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return c, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		return nil, fmt.Errorf("kubernetes settings: %w; check the sandbox's kubernetes {} block against docs/deploy/kubernetes.md (tolerations, affinity and topology_spread_constraints use the pod spec's field names)", err)
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// validate checks what the API server would otherwise reject only when
// the pod is created, with a message naming the blueprint setting.
func (c *SandboxConfig) validate() error {
	var errs []error
	if c.StorageBytes < 0 {
		errs = append(errs, errors.New("kubernetes storage: must not be negative"))
	}
	errs = append(errs, validateTolerations("tolerations", c.Tolerations)...)
	errs = append(errs, validateSpread("topology_spread_constraints", c.TopologySpreadConstraints)...)
	if a := c.Affinity; a != nil && a.NodeAffinity == nil && a.PodAffinity == nil && a.PodAntiAffinity == nil {
		errs = append(errs, errors.New("kubernetes affinity: set nodeAffinity, podAffinity or podAntiAffinity (or remove the empty affinity)"))
	}
	return errors.Join(errs...)
}

func validateTolerations(field string, ts []corev1.Toleration) []error {
	var errs []error
	for i, t := range ts {
		at := fmt.Sprintf("kubernetes %s[%d]", field, i)
		if t.Key != "" {
			for _, msg := range validation.IsQualifiedName(t.Key) {
				errs = append(errs, fmt.Errorf("%s: key %q: %s", at, t.Key, msg))
			}
		}
		switch t.Operator {
		case "", corev1.TolerationOpEqual:
			if t.Key == "" {
				errs = append(errs, fmt.Errorf("%s: operator Equal needs a key; use operator = \"Exists\" to tolerate every taint", at))
			}
		case corev1.TolerationOpExists:
			if t.Value != "" {
				errs = append(errs, fmt.Errorf("%s: operator Exists takes no value; drop value or use operator = \"Equal\"", at))
			}
		default:
			errs = append(errs, fmt.Errorf("%s: operator %q: use \"Equal\" or \"Exists\"", at, t.Operator))
		}
		switch t.Effect {
		case "", corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
		default:
			errs = append(errs, fmt.Errorf("%s: effect %q: use NoSchedule, PreferNoSchedule or NoExecute (or leave it empty for all)", at, t.Effect))
		}
		if t.TolerationSeconds != nil && t.Effect != corev1.TaintEffectNoExecute {
			errs = append(errs, fmt.Errorf("%s: tolerationSeconds applies only to effect NoExecute", at))
		}
	}
	return errs
}

func validateSpread(field string, cs []corev1.TopologySpreadConstraint) []error {
	var errs []error
	for i, c := range cs {
		at := fmt.Sprintf("kubernetes %s[%d]", field, i)
		if c.MaxSkew < 1 {
			errs = append(errs, fmt.Errorf("%s: maxSkew must be at least 1", at))
		}
		if c.TopologyKey == "" {
			errs = append(errs, fmt.Errorf("%s: topologyKey is required, e.g. topology.kubernetes.io/zone", at))
		}
		switch c.WhenUnsatisfiable {
		case corev1.DoNotSchedule, corev1.ScheduleAnyway:
		default:
			errs = append(errs, fmt.Errorf("%s: whenUnsatisfiable %q: use DoNotSchedule or ScheduleAnyway", at, c.WhenUnsatisfiable))
		}
	}
	return errs
}

// Scheduling is the driver-wide placement of sandbox pods (daemon flags).
type Scheduling struct {
	Tolerations               []corev1.Toleration
	Affinity                  *corev1.Affinity
	TopologySpreadConstraints []corev1.TopologySpreadConstraint
}

// Validate checks daemon-level scheduling the way DecodeDriverConfig checks
// a blueprint's.
func (s Scheduling) Validate() error {
	c := SandboxConfig{Tolerations: s.Tolerations, Affinity: s.Affinity, TopologySpreadConstraints: s.TopologySpreadConstraints}
	return c.validate()
}

// settings merges a sandbox's settings over the driver's defaults.
func (d *Driver) settings(k *SandboxConfig) SandboxConfig {
	out := SandboxConfig{Namespace: d.opts.Namespace, RuntimeClass: d.opts.RuntimeClassName, StorageClass: d.opts.StorageClass,
		StorageBytes: d.opts.StorageBytes, Image: d.opts.Image, NodeSelector: d.opts.NodeSelector,
		Tolerations: slices.Clone(d.opts.Scheduling.Tolerations), Affinity: d.opts.Scheduling.Affinity,
		TopologySpreadConstraints: d.opts.Scheduling.TopologySpreadConstraints}
	if k != nil {
		if k.RuntimeClass != "" {
			out.RuntimeClass = k.RuntimeClass
		}
		if k.StorageClass != "" {
			out.StorageClass = k.StorageClass
		}
		if k.StorageBytes > 0 {
			out.StorageBytes = k.StorageBytes
		}
		if k.Image != "" {
			out.Image = k.Image
		}
		if len(k.NodeSelector) > 0 {
			out.NodeSelector = k.NodeSelector
		}
		for _, t := range k.Tolerations {
			if !slices.ContainsFunc(out.Tolerations, func(o corev1.Toleration) bool { return o.MatchToleration(&t) }) {
				out.Tolerations = append(out.Tolerations, t)
			}
		}
		if k.Affinity != nil {
			out.Affinity = k.Affinity
		}
		if len(k.TopologySpreadConstraints) > 0 {
			out.TopologySpreadConstraints = k.TopologySpreadConstraints
		}
	}
	// Without a selector a spread constraint counts no pod at all; the
	// useful default is "this daemon's sandbox pods".
	spread := make([]corev1.TopologySpreadConstraint, len(out.TopologySpreadConstraints))
	for i, c := range out.TopologySpreadConstraints {
		if c.LabelSelector == nil {
			c.LabelSelector = &metav1.LabelSelector{MatchLabels: map[string]string{LabelManagedBy: ManagedBy, LabelComponent: ComponentSandbox}}
		}
		spread[i] = c
	}
	out.TopologySpreadConstraints = spread
	return out
}

// ParseToleration reads a toleration in kubectl taint syntax, the form a
// node pool's taint is written in: "key=value:Effect" tolerates exactly
// that taint, "key:Effect" any value of key, and a missing ":Effect" every
// effect.
func ParseToleration(s string) (corev1.Toleration, error) {
	t := corev1.Toleration{Operator: corev1.TolerationOpExists}
	kv, effect, hasEffect := strings.Cut(s, ":")
	if hasEffect {
		t.Effect = corev1.TaintEffect(effect)
	}
	if k, v, ok := strings.Cut(kv, "="); ok {
		t.Key, t.Value, t.Operator = k, v, corev1.TolerationOpEqual
	} else {
		t.Key = kv
	}
	if t.Key == "" {
		return t, fmt.Errorf("toleration %q: write key=value:Effect or key:Effect, e.g. nemoclave.dev/sandbox=true:NoSchedule", s)
	}
	if errs := validateTolerations("toleration", []corev1.Toleration{t}); len(errs) > 0 {
		return t, fmt.Errorf("toleration %q: %w", s, errors.Join(errs...))
	}
	return t, nil
}

// LoadScheduling reads a YAML or JSON file in the pod spec's shape (the
// nodeSelector, tolerations, affinity and topologySpreadConstraints keys of
// a PodSpec; other keys are refused) and returns it validated.
func LoadScheduling(path string) (Scheduling, map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Scheduling{}, nil, fmt.Errorf("scheduling file: %w", err)
	}
	var f struct {
		NodeSelector              map[string]string                 `json:"nodeSelector,omitempty"`
		Tolerations               []corev1.Toleration               `json:"tolerations,omitempty"`
		Affinity                  *corev1.Affinity                  `json:"affinity,omitempty"`
		TopologySpreadConstraints []corev1.TopologySpreadConstraint `json:"topologySpreadConstraints,omitempty"`
	}
	if err := yaml.UnmarshalStrict(b, &f); err != nil {
		return Scheduling{}, nil, fmt.Errorf("scheduling file %s: %w; it takes nodeSelector, tolerations, affinity and topologySpreadConstraints as in a pod spec", path, err)
	}
	s := Scheduling{Tolerations: f.Tolerations, Affinity: f.Affinity, TopologySpreadConstraints: f.TopologySpreadConstraints}
	if err := s.Validate(); err != nil {
		return Scheduling{}, nil, fmt.Errorf("scheduling file %s: %w", path, err)
	}
	return s, f.NodeSelector, nil
}
