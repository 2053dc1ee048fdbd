package kubernetes

import (
	"testing"
)

// A blueprint's kubernetes {} block overrides the daemon's defaults for
// that sandbox's pod only.
func TestSandboxSettingsOverrideDriverDefaults(t *testing.T) {
	t.Parallel()
	d := &Driver{opts: Options{Namespace: "sandboxes", Image: "registry/nemoclave:1", RuntimeClassName: "gvisor", SupervisorPath: "/nemoclave"}}
	base := d.pod(&supervisorConfig{Name: "a"}, nil, nil)
	if base.Spec.Containers[0].Image != "registry/nemoclave:1" || *base.Spec.RuntimeClassName != "gvisor" || base.Spec.Volumes == nil {
		t.Fatalf("defaults not applied: %+v", base.Spec)
	}
	over := d.pod(&supervisorConfig{Name: "b", Kubernetes: &SandboxConfig{
		Image: "registry/agent-with-tools:2", RuntimeClass: "kata", StorageBytes: 1 << 30, NodeSelector: map[string]string{"pool": "agents"}}}, nil, nil)
	spec := over.Spec
	if spec.Containers[0].Image != "registry/agent-with-tools:2" || *spec.RuntimeClassName != "kata" || spec.NodeSelector["pool"] != "agents" {
		t.Fatalf("overrides not applied: image %s runtime %v nodes %v", spec.Containers[0].Image, *spec.RuntimeClassName, spec.NodeSelector)
	}
	var claim string
	for _, v := range spec.Volumes {
		if v.Name == "workspace" && v.PersistentVolumeClaim != nil {
			claim = v.PersistentVolumeClaim.ClaimName
		}
	}
	if claim == "" {
		t.Fatal("storage_bytes did not put the workspace on a claim")
	}
	if again := d.pod(&supervisorConfig{Name: "c"}, nil, nil); again.Spec.Containers[0].Image != "registry/nemoclave:1" {
		t.Fatal("one sandbox's overrides leaked into the driver's defaults")
	}
}
