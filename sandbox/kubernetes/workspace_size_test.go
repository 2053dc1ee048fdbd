package kubernetes

import (
	"testing"

	"github.com/nemoclave/nemoclave/sandbox"
)

// P11 on kubernetes: resources.workspace_size becomes the workspace
// emptyDir's sizeLimit (the kubelet evicts the pod past it); without it
// the emptyDir is unbounded as before.
func TestPodWorkspaceSizeLimit(t *testing.T) {
	d := &Driver{opts: Options{Namespace: "sandboxes", Image: "img", SupervisorPath: "/nc"}}
	for _, tc := range []struct {
		bytes int64
		want  string
	}{{0, ""}, {2 << 30, "2Gi"}} {
		spec := d.pod(&supervisorConfig{Name: "ws", Resources: sandbox.Resources{WorkspaceBytes: tc.bytes}}, nil, nil).Spec
		var got string
		found := false
		for _, v := range spec.Volumes {
			if v.Name != "workspace" {
				continue
			}
			found = true
			if v.EmptyDir == nil {
				t.Fatalf("workspace volume is not an emptyDir: %+v", v.VolumeSource)
			}
			if v.EmptyDir.SizeLimit != nil {
				got = v.EmptyDir.SizeLimit.String()
			}
		}
		if !found || got != tc.want {
			t.Errorf("workspace_size %d: workspace sizeLimit %q (volume found: %v), want %q", tc.bytes, got, found, tc.want)
		}
	}
}
