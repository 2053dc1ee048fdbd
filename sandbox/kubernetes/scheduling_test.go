package kubernetes

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/nemoclave/nemoclave/blueprints"
)

// The AKS and EKS guides taint the sandbox node pool: the daemon's
// --kubernetes-toleration lets every sandbox pod onto it, and a
// blueprint's kubernetes {} block adds its own tolerations, affinity and
// topology spread, written as in a pod spec. The block travels to the
// driver as opaque JSON (sandbox.Spec.DriverConfig), exactly as the
// runtime sends it.
func TestScheduling_BlueprintBlockReachesThePod(t *testing.T) {
	t.Parallel()
	src := `
policy "p" {
  unknown_hosts = "deny"
}
sandbox "gpu" {
  driver = "kubernetes"
  policy = policy.p
  kubernetes {
    tolerations = [
      { key = "nvidia.com/gpu", operator = "Exists", effect = "NoSchedule" },
      { key = "nemoclave.dev/sandbox", operator = "Equal", value = "true", effect = "NoSchedule" },
    ]
    affinity = {
      nodeAffinity = {
        requiredDuringSchedulingIgnoredDuringExecution = {
          nodeSelectorTerms = [{ matchExpressions = [{ key = "accelerator", operator = "In", values = ["a100"] }] }]
        }
      }
    }
    topology_spread_constraints = [
      { maxSkew = 1, topologyKey = "topology.kubernetes.io/zone", whenUnsatisfiable = "ScheduleAnyway" },
    ]
  }
}
agent "a" {
  sandbox = sandbox.gpu
  command = ["nemoclave", "agent"]
}
`
	bp, diags := blueprints.NewLoader(blueprints.Options{LookupEnv: func(string) (string, bool) { return "", false }}).
		LoadSources(context.Background(), t.TempDir(), map[string][]byte{"main.hcl": []byte(src)})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	raw, err := json.Marshal(bp.Sandbox("gpu").Kubernetes)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := DecodeDriverConfig(raw)
	if err != nil {
		t.Fatalf("decoding %s: %v", raw, err)
	}
	pool, err := ParseToleration("nemoclave.dev/sandbox=true:NoSchedule")
	if err != nil {
		t.Fatal(err)
	}
	d := &Driver{opts: Options{Namespace: "sandboxes", Image: "img", SupervisorPath: "/nc",
		Scheduling: Scheduling{Tolerations: []corev1.Toleration{pool}}}}
	spec := d.pod(&supervisorConfig{Name: "gpu", Kubernetes: cfg}, nil, nil).Spec

	// The pool toleration appears once (the blueprint repeats it), the GPU
	// one is added.
	if len(spec.Tolerations) != 2 || spec.Tolerations[0] != pool || spec.Tolerations[1].Key != "nvidia.com/gpu" || spec.Tolerations[1].Operator != corev1.TolerationOpExists {
		t.Fatalf("tolerations = %+v", spec.Tolerations)
	}
	a := spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		t.Fatalf("affinity = %+v", a)
	}
	expr := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchExpressions[0]
	if expr.Key != "accelerator" || expr.Operator != corev1.NodeSelectorOpIn || len(expr.Values) != 1 || expr.Values[0] != "a100" {
		t.Fatalf("node affinity expression = %+v", expr)
	}
	if len(spec.TopologySpreadConstraints) != 1 {
		t.Fatalf("spread = %+v", spec.TopologySpreadConstraints)
	}
	c := spec.TopologySpreadConstraints[0]
	if c.MaxSkew != 1 || c.TopologyKey != "topology.kubernetes.io/zone" || c.WhenUnsatisfiable != corev1.ScheduleAnyway ||
		c.LabelSelector == nil || c.LabelSelector.MatchLabels[LabelComponent] != ComponentSandbox {
		t.Fatalf("spread constraint = %+v (a missing labelSelector should count this daemon's sandbox pods)", c)
	}

	// Another sandbox without a block gets the daemon's placement only.
	plain := d.pod(&supervisorConfig{Name: "plain"}, nil, nil).Spec
	if len(plain.Tolerations) != 1 || plain.Tolerations[0] != pool || plain.Affinity != nil || len(plain.TopologySpreadConstraints) != 0 {
		t.Fatalf("defaults leaked or lost: %+v %+v %+v", plain.Tolerations, plain.Affinity, plain.TopologySpreadConstraints)
	}
}

func TestScheduling_DriverConfigRefusesWhatItCannotApply(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		`{"tolerations":[{"key":"a","tolerationSecond":5}]}`:                                        `unknown field "tolerationSecond"`,
		`{"node_selectr":{"a":"b"}}`:                                                                `unknown field "node_selectr"`,
		`{"tolerations":[{"key":"a","operator":"Maybe"}]}`:                                          `operator "Maybe"`,
		`{"tolerations":[{"operator":"Equal","value":"x"}]}`:                                        "needs a key",
		`{"tolerations":[{"key":"a","effect":"NoSchedule","tolerationSeconds":5}]}`:                 "only to effect NoExecute",
		`{"topology_spread_constraints":[{"maxSkew":0,"topologyKey":"z","whenUnsatisfiable":"X"}]}`: "maxSkew must be at least 1",
		`{"affinity":{}}`: "set nodeAffinity",
	} {
		_, err := DecodeDriverConfig(json.RawMessage(raw))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("DecodeDriverConfig(%s) = %v, want an error containing %q", raw, err, want)
		}
	}
	if c, err := DecodeDriverConfig(nil); err != nil || c == nil {
		t.Fatalf("empty config: %v %v", c, err)
	}
}

func TestScheduling_DaemonFlagsAndFile(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]corev1.Toleration{
		"nemoclave.dev/sandbox=true:NoSchedule":            {Key: "nemoclave.dev/sandbox", Operator: corev1.TolerationOpEqual, Value: "true", Effect: corev1.TaintEffectNoSchedule},
		"kubernetes.azure.com/scalesetpriority:NoSchedule": {Key: "kubernetes.azure.com/scalesetpriority", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
		"dedicated": {Key: "dedicated", Operator: corev1.TolerationOpExists},
	} {
		got, err := ParseToleration(in)
		if err != nil || got != want {
			t.Errorf("ParseToleration(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "=x:NoSchedule", "a=b:Sometimes", "bad key!:NoSchedule"} {
		if _, err := ParseToleration(bad); err == nil {
			t.Errorf("ParseToleration(%q) accepted", bad)
		}
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "scheduling.yaml")
	os.WriteFile(good, []byte(`nodeSelector:
  agentpool: sandboxes
tolerations:
- key: nemoclave.dev/sandbox
  operator: Equal
  value: "true"
  effect: NoSchedule
topologySpreadConstraints:
- maxSkew: 1
  topologyKey: kubernetes.io/hostname
  whenUnsatisfiable: ScheduleAnyway
`), 0o600)
	s, ns, err := LoadScheduling(good)
	if err != nil {
		t.Fatal(err)
	}
	if ns["agentpool"] != "sandboxes" || len(s.Tolerations) != 1 || s.Tolerations[0].Value != "true" || len(s.TopologySpreadConstraints) != 1 {
		t.Fatalf("LoadScheduling = %+v %v", s, ns)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("containers: []\n"), 0o600)
	if _, _, err := LoadScheduling(bad); err == nil || !strings.Contains(err.Error(), "containers") {
		t.Fatalf("a pod spec key other than scheduling was accepted: %v", err)
	}
}
