package blueprints

import (
	"strings"
	"testing"
)

func TestLocalsEvaluateInDependencyOrder(t *testing.T) {
	t.Parallel()
	bp := mustLoad(t, minimalSandbox+`
locals {
  z = "${local.y}z"
}

locals {
  y = "${local.x}y"
  x = upper(var.v)
}

variable "v" {
  default = "x"
}

sandbox "l" {
  policy = policy.p
  environment = {
    Z = local.z
  }
}
`, Options{})
	if got := bp.Sandbox("l").Environment["Z"]; got != "Xyz" {
		t.Fatalf("local.z = %q", got)
	}
}

func TestLocalCycleNamesEveryMember(t *testing.T) {
	t.Parallel()
	diags := wantError(t, "locals {\n  a = local.b\n  b = local.c\n  c = local.a\n  d = local.a\n}\n", Options{}, "Cycle in local values")
	n := 0
	for _, d := range diags {
		if d.Summary == "Cycle in local values" {
			n++
			for _, part := range []string{"local.a (test.hcl:2", "local.b (test.hcl:3", "local.c (test.hcl:4"} {
				if !strings.Contains(d.Detail, part) {
					t.Errorf("cycle diagnostic lacks %q: %s", part, d.Detail)
				}
			}
		}
	}
	if n != 1 {
		t.Errorf("want exactly one cycle diagnostic, got %d", n)
	}
}
