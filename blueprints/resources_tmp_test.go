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
