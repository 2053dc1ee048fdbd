package blueprints

import "testing"

func TestInferenceDefaults(t *testing.T) {
	t.Parallel()
	bp := mustLoad(t, minimalSandbox+`
plugin "llm" "l" {
  source = "builtin/llm-openai"
}

inference {
  model "only" {
    provider = plugin.llm.l
    model    = "m"
  }
}

agent "a" {
  sandbox = sandbox.s
  command = ["x"]
  subagent "s" {
  }
}
`, Options{})
	if bp.Inference.Default != "only" {
		t.Errorf("single model is not the default: %q", bp.Inference.Default)
	}
	a := bp.Agent("a")
	if a.Model != "only" || a.Subagents[0].Model != "only" {
		t.Errorf("agent model %q, subagent model %q", a.Model, a.Subagents[0].Model)
	}
}

func TestFallbackLoopAcrossThree(t *testing.T) {
	t.Parallel()
	wantError(t, `
plugin "llm" "l" {
  source = "builtin/llm-openai"
}

inference {
  default = "a"
  model "a" {
    provider = plugin.llm.l
    model    = "m"
    fallback = ["b"]
  }
  model "b" {
    provider = plugin.llm.l
    model    = "m"
    fallback = ["c"]
  }
  model "c" {
    provider = plugin.llm.l
    model    = "m"
    fallback = ["a"]
  }
}
`, Options{}, "a → b → c → a")
}
