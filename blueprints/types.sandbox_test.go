package blueprints

import "testing"

func TestParseByteSize(t *testing.T) {
	t.Parallel()
	cases := map[string]int64{
		"512":    512,
		"1KiB":   1024,
		"512MiB": 512 << 20,
		"2GiB":   2 << 30,
		"10Gi":   10 << 30,
		"1G":     1e9,
		"1.5GiB": 3 << 29,
		"3 MB":   3e6,
	}
	for in, want := range cases {
		got, err := parseByteSize(in)
		if err != nil || got != want {
			t.Errorf("parseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "lots", "1PiB", "-1GiB", "1 parsec", "99999999999TiB"} {
		if _, err := parseByteSize(bad); err == nil {
			t.Errorf("parseByteSize(%q) accepted a bad size", bad)
		}
	}
}

func TestSandboxGetsItsOwnEffectivePolicy(t *testing.T) {
	t.Parallel()
	bp := mustLoad(t, minimalSandbox+`
sandbox "t" {
  policy = policy.p
}
`, Options{})
	a, b := bp.Sandbox("s"), bp.Sandbox("t")
	if a.Policy == nil || b.Policy == nil || a.Policy == b.Policy {
		t.Fatal("each sandbox must hold its own copy of the effective policy")
	}
	if err := a.Policy.Validate(); err != nil {
		t.Fatalf("effective policy does not validate: %v", err)
	}
	a.Policy.Network = append(a.Policy.Network, a.Policy.Network...)
	a.Policy.Filesystem.ReadOnly[0] = "/changed"
	if bp.Policy("p").Filesystem.ReadOnly[0] == "/changed" || b.Policy.Filesystem.ReadOnly[0] == "/changed" {
		t.Fatal("changing one sandbox's policy changed another's")
	}
}

func TestWorkspaceVisibility(t *testing.T) {
	t.Parallel()
	_, diags, _ := loadString(t, `
policy "narrow" {
  filesystem {
    read_only  = ["/usr"]
    read_write = ["/tmp"]
  }
}

policy "wide" {
  filesystem {
    read_only  = ["/usr"]
    read_write = ["/"]
  }
}

sandbox "hidden" {
  policy    = policy.narrow
  workspace = "./ws"
}

sandbox "seen" {
  policy    = policy.wide
  workspace = "./ws"
}
`, Options{})
	n := 0
	for _, d := range diags {
		if d.Summary == "Workspace not visible" {
			n++
			if d.Subject.Start.Line != 18 {
				t.Errorf("warning at line %d, want the hidden sandbox's workspace (18)", d.Subject.Start.Line)
			}
		}
	}
	if n != 1 || diags.HasErrors() {
		t.Fatalf("want one warning and no errors, got %v", diags)
	}
}
