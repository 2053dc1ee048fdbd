package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/nemoclave/nemoclave/host/credentials"
	"github.com/nemoclave/nemoclave/policy"
)

func TestPlanJSONHasEffectivePolicy(t *testing.T) {
	t.Parallel()
	out, errOut, code := runBlueprintCLI(t, "plan", "-o", "json", quickstart)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	var plan struct {
		Plugins []struct {
			Address string `json:"address"`
		} `json:"plugins"`
		Sandboxes []struct {
			Name   string         `json:"name"`
			Policy *policy.Policy `json:"policy"`
		} `json:"sandboxes"`
		Agents []struct {
			Name string `json:"name"`
		} `json:"agents"`
	}
	if err := json.Unmarshal([]byte(out), &plan); err != nil {
		t.Fatalf("plan -o json is not JSON: %v\n%s", err, out)
	}
	if len(plan.Sandboxes) != 1 || plan.Sandboxes[0].Policy == nil {
		t.Fatalf("no effective policy in %s", out)
	}
	p := plan.Sandboxes[0].Policy
	if err := p.Validate(); err != nil {
		t.Fatalf("effective policy invalid: %v", err)
	}
	if p.UnknownHosts != policy.UnknownDeny || len(p.Presets) != 1 || p.Presets[0] != "pypi" {
		t.Errorf("effective policy %+v", p)
	}
	if hosts := strings.Join(p.Hosts(), ","); hosts != "files.pythonhosted.org,pypi.org" {
		t.Errorf("hosts %s", hosts)
	}
	if len(plan.Plugins) != 4 || len(plan.Agents) != 1 || plan.Agents[0].Name != "assistant" {
		t.Errorf("plan %s", out)
	}
}

func TestPlanText(t *testing.T) {
	t.Parallel()
	out, errOut, code := runBlueprintCLI(t, "plan", quickstart)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	for _, want := range []string{
		"Plugins to launch, in order (4):", "plugin.memory.default", "wired: embeddings → plugin.embeddings.local",
		"Model routes (default \"default\"):", "effective policy \"quickstart\"", "pypi.org:443",
		"assistant  in sandbox quickstart: nemoclave agent",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
}

func TestPlanRedactsSecrets(t *testing.T) {
	t.Parallel()
	path := writeBlueprint(t, `
plugin "llm" "nim" {
  source = "builtin/llm-openai"
  config {
    api_key = credential("NVIDIA_API_KEY")
  }
}
`+cliBase)
	// plan checks the credential exists in the store the run would use.
	home := t.TempDir()
	if err := credentials.NewFile(home).Set(context.Background(), "NVIDIA_API_KEY", credentials.NewSecret(cliSecret)); err != nil {
		t.Fatal(err)
	}
	out, err := runCLI(t, "--home", home, "plan", "-o", "json", path)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if strings.Contains(out, cliSecret) {
		t.Errorf("plan printed the credential's value:\n%s", out)
	}
	if !strings.Contains(out, `"name": "NVIDIA_API_KEY"`) {
		t.Errorf("plan does not list the credential reference:\n%s", out)
	}
}

func TestPlanFailsLikeValidate(t *testing.T) {
	t.Parallel()
	path := writeBlueprint(t, "sandbox \"s\" {\n  policy = policy.nope\n}\n")
	out, errOut, code := runBlueprintCLI(t, "plan", path)
	if code != 1 || out != "" || !strings.Contains(errOut, ":2:12: error: Reference to undeclared policy") {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
}
