package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/nemoclave/nemoclave/internal/cloudstandin"
)

// cloudBlueprint routes one agent to Bedrock or Azure OpenAI (var.model)
// through the built plugins, each reaching its stand-in on loopback; the
// keys come from the daemon's environment as credentials.
const cloudBlueprint = `
variable "bedrock_url" { type = string }
variable "azure_url" { type = string }
variable "model" { type = string }

plugin "llm" "bedrock" {
  source = "builtin/llm-bedrock"
  config {
    region            = "eu-west-1"
    endpoint_url      = var.bedrock_url
    models            = ["anthropic.claude-test"]
    access_key_id     = credential("E2E_AWS_ACCESS_KEY_ID")
    secret_access_key = credential("E2E_AWS_SECRET_ACCESS_KEY")
    max_attempts      = 1
  }
}

plugin "llm" "azure" {
  source = "builtin/llm-azure-openai"
  config {
    endpoint    = var.azure_url
    deployments = { "gpt-4o" = "gpt-test" }
    api_key     = credential("E2E_AZURE_OPENAI_KEY")
  }
}

inference {
  default = "claude"
  model "claude" {
    provider = plugin.llm.bedrock
    model    = "anthropic.claude-test"
  }
  model "gpt" {
    provider = plugin.llm.azure
    model    = "gpt-4o"
  }
}

policy "cloud" {
  filesystem {
    read_only  = ["/usr", "/lib", "/lib64", "/bin", "/etc"]
    read_write = ["/workspace", "/tmp"]
  }
  unknown_hosts = "deny"
}

sandbox "cloud" {
  driver    = "local"
  policy    = policy.cloud
  workspace = "./workspace"
}

agent "assistant" {
  sandbox = sandbox.cloud
  model   = var.model
  command = ["nemoclave", "agent", "-p", "hello from the sandbox"]
}
`

// TestBedrockAndAzureOpenAIThroughTheDaemon runs an agent whose model
// calls go through the gateway to the built llm-bedrock and
// llm-azure-openai plugins, each in its plugin box, to stand-ins that
// verify the SigV4 signature and the api-key; the keys never reach the
// sandbox's answer.
func TestBedrockAndAzureOpenAIThroughTheDaemon(t *testing.T) {
	creds := aws.Credentials{AccessKeyID: "AKIAE2ECLOUDLLM00001", SecretAccessKey: "e2e-bedrock-secret-5f1c9a7e3b"}
	const azureKey = "e2e-azure-openai-key-8d2b6f4a1c"
	bedrock := cloudstandin.StartBedrock(t, "eu-west-1", creds)
	azure := cloudstandin.StartAzure(t, nil, azureKey)
	e := newEnv(t, "E2E_AWS_ACCESS_KEY_ID="+creds.AccessKeyID, "E2E_AWS_SECRET_ACCESS_KEY="+creds.SecretAccessKey, "E2E_AZURE_OPENAI_KEY="+azureKey)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "workspace"), 0o755); err != nil {
		t.Fatal(err)
	}
	bp := filepath.Join(dir, "blueprint.hcl")
	if err := os.WriteFile(bp, []byte(cloudBlueprint), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, model := range []string{"claude", "gpt"} {
		r := e.run(t.Context(), "run", bp, "--var", "bedrock_url="+bedrock.URL, "--var", "azure_url="+azure.URL, "--var", "model="+model)
		if r.code != 0 {
			t.Fatalf("run (%s): exit %d\nstdout:\n%s\nstderr:\n%s\n%s", model, r.code, r.stdout, r.stderr, e.daemonLog())
		}
		out := r.stdout + r.stderr
		// The stand-ins answer "echo: <prompt>", or "tool said: …" once the
		// agent has run a tool it was asked to call.
		if !strings.Contains(r.stdout, "echo: hello from the sandbox") && !strings.Contains(r.stdout, "tool said:") {
			t.Fatalf("run (%s): the stand-in's answer is missing:\nstdout:\n%s\nstderr:\n%s\n%s", model, r.stdout, r.stderr, e.daemonLog())
		}
		for _, secret := range []string{creds.SecretAccessKey, azureKey} {
			if strings.Contains(out, secret) {
				t.Fatalf("run (%s) printed a credential", model)
			}
		}
	}
	if n := bedrock.VerifiedBy(creds.AccessKeyID); n == 0 {
		t.Fatal("no request reached Bedrock with a valid SigV4 signature")
	}
	_, h, q := azure.Seen()
	if h.Get("api-key") != azureKey || !strings.HasPrefix(q, "api-version=") {
		t.Fatalf("Azure saw the right api-key: %v, query %q", h.Get("api-key") == azureKey, q)
	}
}
