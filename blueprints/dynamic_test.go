package blueprints

import (
	"strings"
	"testing"
)

func TestDynamicBlocks(t *testing.T) {
	t.Parallel()
	bp := mustLoad(t, `
variable "api_hosts" {
  type    = list(string)
  default = ["a.example.com", "b.example.com"]
}

variable "models" {
  type    = map(string)
  default = { fast = "m-small", smart = "m-large" }
}

plugin "llm" "l" {
  source = "builtin/llm-openai"
}

plugin "llm" "n" {
  source = "./plugins/nested"
  config {
    name = "n"
    dynamic "route" {
      for_each = ["/x", "/y"]
      content {
        path = route.value
      }
    }
  }
}

inference {
  default = "smart"
  dynamic "model" {
    for_each = var.models
    labels   = [model.key]
    content {
      provider = plugin.llm.l
      model    = model.value
    }
  }
}

policy "p" {
  network "apis" {
    dynamic "endpoint" {
      for_each = var.api_hosts
      iterator = h
      content {
        host    = h.value
        inspect = true
        allow {
          methods = ["GET"]
        }
      }
    }
  }
}

sandbox "s" {
  policy = policy.p
}

agent "a" {
  sandbox = sandbox.s
  command = ["x"]
  dynamic "subagent" {
    for_each = keys(var.models)
    labels   = ["use-${subagent.value}"]
    content {
      model = subagent.value
    }
  }
}
`, Options{})
	if got := strings.Join(bp.Policy("p").Hosts(), ","); got != "a.example.com,b.example.com" {
		t.Errorf("dynamic endpoints: %s", got)
	}
	if m := bp.Inference.Model("fast"); m == nil || m.Model != "m-small" {
		t.Errorf("dynamic models: %+v", bp.Inference.Models)
	}
	if subs := bp.Agent("a").Subagents; len(subs) != 2 || subs[0].Name != "use-fast" || subs[0].Model != "fast" {
		t.Errorf("dynamic subagents: %+v", subs)
	}
	if cfg := string(bp.Plugin("llm", "n").Config); !strings.Contains(cfg, `"route":[{"path":"/x"},{"path":"/y"}]`) {
		t.Errorf("dynamic config blocks: %s", cfg)
	}
}

func TestDynamicBlockErrors(t *testing.T) {
	t.Parallel()
	wantError(t, minimalSandbox+`
policy "q" {
  network "n" {
    dynamic "endpoint" {
      for_each = [credential("X")]
      content {
        host = "a.example.com"
      }
    }
  }
}
`, Options{}, "for_each cannot iterate over credentials")
	wantError(t, minimalSandbox+`
policy "q" {
  network "n" {
    dynamic "endpoint" {
      for_each = ["a.example.com"]
      content {
        host = endpoint.value
        hots = "x"
      }
    }
  }
}
`, Options{}, `An argument named "hots" is not expected here`)
	wantError(t, minimalSandbox+`
policy "q" {
  network "n" {
    dynamic "endpoint" {
      for_each = ["a.example.com"]
      content {
        host = other.value
      }
    }
  }
}
`, Options{}, `There is nothing called "other"`)
}
