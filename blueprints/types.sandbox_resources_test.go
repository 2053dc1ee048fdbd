package blueprints

import "testing"

// The explicit opt-out of resource limits: off unless the blueprint says
// allow_unlimited = true in the sandbox's resources block.
func TestSandboxResourcesAllowUnlimited(t *testing.T) {
	t.Parallel()
	src := func(extra string) string {
		return `
policy "p" {
  filesystem {
    read_only = ["/usr"]
  }
}
sandbox "a" {
  policy = policy.p
  resources {
    memory = "1GiB"
    ` + extra + `
  }
}
`
	}
	if bp := mustLoad(t, src(""), Options{}); bp.Sandbox("a").Resources.AllowUnlimited {
		t.Error("allow_unlimited is on by default")
	}
	bp := mustLoad(t, src("allow_unlimited = true"), Options{})
	if r := bp.Sandbox("a").Resources; !r.AllowUnlimited || r.MemoryBytes != 1<<30 {
		t.Errorf("resources = %+v, want allow_unlimited and 1 GiB", r)
	}
	if _, diags, _ := loadString(t, src(`allow_unlimited = "yes please"`), Options{}); !diags.HasErrors() {
		t.Error("a non-bool allow_unlimited was accepted")
	}
}
