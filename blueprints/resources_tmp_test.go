package blueprints

import "testing"

func TestResourcesTmp(t *testing.T) {
	bp := mustLoad(t, `
policy "p" {
}
sandbox "s" {
  policy = policy.p
  resources {
    memory = "1GiB"
    tmp    = "16MiB"
  }
}
`, Options{})
	if got := bp.Sandbox("s").Resources.TmpBytes; got != 16<<20 {
		t.Fatalf("tmp = %d, want 16 MiB", got)
	}
}

func TestResourcesWorkspaceSize(t *testing.T) {
	bp := mustLoad(t, `
policy "p" {
}
sandbox "s" {
  policy = policy.p
  resources {
    workspace_size = "2GiB"
  }
}
`, Options{})
	if got := bp.Sandbox("s").Resources.WorkspaceBytes; got != 2<<30 {
		t.Fatalf("workspace_size = %d, want 2 GiB", got)
	}
	wantError(t, `
policy "p" {
}
sandbox "s" {
  policy = policy.p
  resources {
    workspace_size = "1MiB"
  }
}
`, Options{}, "workspace_size must be at least 8 MiB")
	wantError(t, `
policy "p" {
}
sandbox "s" {
  policy = policy.p
  driver = "kubernetes"
  resources {
    workspace_size = "1GiB"
  }
  kubernetes {
    storage = "5Gi"
  }
}
`, Options{}, "remove resources.workspace_size or kubernetes.storage")
}
