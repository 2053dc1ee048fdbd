//go:build kubernetes

package controller

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the API group of AgentEnvironment; deploy/crds holds its
// CustomResourceDefinition, which must describe the same fields.
var GroupVersion = schema.GroupVersion{Group: "nemoclave.dev", Version: "v1alpha1"}

// Condition types and reasons an AgentEnvironment's status carries.
const (
	// ConditionReady is true once every sandbox of the blueprint was
	// created by the current generation of the spec.
	ConditionReady = "Ready"
	// ConditionValid is false when the blueprint does not evaluate; its
	// message is the validate diagnostic.
	ConditionValid = "BlueprintValid"

	ReasonCreated       = "SandboxesCreated"
	ReasonAdopted       = "SandboxesAdopted"
	ReasonInvalid       = "BlueprintInvalid"
	ReasonSourceError   = "BlueprintSourceError"
	ReasonRunFailed     = "RunFailed"
	ReasonValid         = "Evaluated"
	ReasonReconciling   = "Reconciling"
	ReasonSandboxesGone = "SandboxesGone"
)

// Finalizer keeps an AgentEnvironment until its sandboxes are deleted.
const Finalizer = "nemoclave.dev/sandboxes"

// AgentEnvironment is a blueprint as a Kubernetes resource: the daemon that
// holds the leader Lease runs it and reports what it made in Status.
type AgentEnvironment struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   AgentEnvironmentSpec   `json:"spec"`
	Status AgentEnvironmentStatus `json:"status,omitempty"`
}

// AgentEnvironmentSpec carries the blueprint inline or by ConfigMap, plus
// values for its variables. Exactly one of Blueprint and ConfigMapRef is set
// (the CRD's validation enforces it too).
type AgentEnvironmentSpec struct {
	// Blueprint is the blueprint's HCL.
	Blueprint string `json:"blueprint,omitempty"`
	// ConfigMapRef names a ConfigMap in the AgentEnvironment's namespace;
	// every key becomes a file beside the blueprint (so a blueprint can
	// refer to "${path.blueprint}/cassette.json"), and Key names the
	// blueprint itself (default blueprint.hcl).
	ConfigMapRef *ConfigMapBlueprint `json:"configMapRef,omitempty"`
	// Variables are the blueprint's input variables (as `nemoclave run
	// --var name=value`).
	Variables map[string]string `json:"variables,omitempty"`
}

// ConfigMapBlueprint points at a blueprint kept in a ConfigMap.
type ConfigMapBlueprint struct {
	Name string `json:"name"`
	Key  string `json:"key,omitempty"`
}

// AgentEnvironmentStatus is what the controller observed and did.
type AgentEnvironmentStatus struct {
	// ObservedGeneration is the spec generation the status describes.
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Sandboxes are the names of the sandboxes this resource runs.
	Sandboxes []string `json:"sandboxes,omitempty"`
	// BlueprintHash is the SHA-256 of the blueprint files and variables
	// last run, so that a change of a referenced ConfigMap is noticed.
	BlueprintHash string `json:"blueprintHash,omitempty"`
	// ReconciledBy is the daemon replica (its leader-election identity)
	// that wrote this status.
	ReconciledBy string             `json:"reconciledBy,omitempty"`
	Conditions   []metav1.Condition `json:"conditions,omitempty"`
}

// AgentEnvironmentList is a list of AgentEnvironment.
type AgentEnvironmentList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AgentEnvironment `json:"items"`
}

// AddToScheme registers the types with a scheme.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &AgentEnvironment{}, &AgentEnvironmentList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}

// The deep copies are written by hand: the types are small, and a code
// generator would be one more tool to install for four structs.

// DeepCopyInto copies in into out.
func (in *AgentEnvironment) DeepCopyInto(out *AgentEnvironment) {
	*out = *in
	out.TypeMeta = in.TypeMeta
	in.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	in.Spec.DeepCopyInto(&out.Spec)
	in.Status.DeepCopyInto(&out.Status)
}

// DeepCopy returns a copy.
func (in *AgentEnvironment) DeepCopy() *AgentEnvironment {
	if in == nil {
		return nil
	}
	out := new(AgentEnvironment)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (in *AgentEnvironment) DeepCopyObject() runtime.Object { return in.DeepCopy() }

// DeepCopyInto copies in into out.
func (in *AgentEnvironmentSpec) DeepCopyInto(out *AgentEnvironmentSpec) {
	*out = *in
	if in.ConfigMapRef != nil {
		c := *in.ConfigMapRef
		out.ConfigMapRef = &c
	}
	if in.Variables != nil {
		out.Variables = make(map[string]string, len(in.Variables))
		for k, v := range in.Variables {
			out.Variables[k] = v
		}
	}
}

// DeepCopyInto copies in into out.
func (in *AgentEnvironmentStatus) DeepCopyInto(out *AgentEnvironmentStatus) {
	*out = *in
	if in.Sandboxes != nil {
		out.Sandboxes = append([]string(nil), in.Sandboxes...)
	}
	if in.Conditions != nil {
		out.Conditions = make([]metav1.Condition, len(in.Conditions))
		for i := range in.Conditions {
			in.Conditions[i].DeepCopyInto(&out.Conditions[i])
		}
	}
}

// DeepCopyInto copies in into out.
func (in *AgentEnvironmentList) DeepCopyInto(out *AgentEnvironmentList) {
	*out = *in
	out.TypeMeta = in.TypeMeta
	in.ListMeta.DeepCopyInto(&out.ListMeta)
	if in.Items != nil {
		out.Items = make([]AgentEnvironment, len(in.Items))
		for i := range in.Items {
			in.Items[i].DeepCopyInto(&out.Items[i])
		}
	}
}

// DeepCopyObject implements runtime.Object.
func (in *AgentEnvironmentList) DeepCopyObject() runtime.Object {
	if in == nil {
		return nil
	}
	out := new(AgentEnvironmentList)
	in.DeepCopyInto(out)
	return out
}
