package runtime

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"

	"github.com/nemoclave/nemoclave/host/plugins"
	"github.com/nemoclave/nemoclave/sandbox/pluginbox"
)

// TestBedrockAndAzureOpenAIAloneGetTheWorkloadIdentity: the daemon's workload
// identity (IRSA, Pod Identity, AKS workload identity variables, their
// token directories, the metadata ports) goes to builtin/llm-bedrock and
// builtin/llm-azure-openai, never to another plugin, never with static
// keys, and never when the config names a static credential.
func TestBedrockAndAzureOpenAIAloneGetTheWorkloadIdentity(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"AWS_REGION": "us-east-1", "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/r",
		"AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/secrets/eks.amazonaws.com/serviceaccount/token",
		"AWS_ACCESS_KEY_ID":           "AKIASTATIC", "AWS_SECRET_ACCESS_KEY": "static-secret",
		"AZURE_CLIENT_ID": "c", "AZURE_TENANT_ID": "t", "AZURE_FEDERATED_TOKEN_FILE": "/var/run/secrets/azure/tokens/azure-identity-token",
		"AZURE_CLIENT_SECRET": "static-azure-secret",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	launch := func(source, cfg string) plugins.Spec {
		spec := plugins.Spec{Source: source, Access: pluginAccess(source, "llm", json.RawMessage(cfg))}
		cloudIdentity(source, json.RawMessage(cfg), &spec, lookup)
		return spec
	}

	bedrock := launch("builtin/llm-bedrock", `{"region":"us-east-1","models":["m"]}`)
	if bedrock.Env["AWS_ROLE_ARN"] == "" || bedrock.Env["AWS_WEB_IDENTITY_TOKEN_FILE"] == "" || bedrock.Env["AWS_ACCESS_KEY_ID"] != "" || bedrock.Env["AWS_SECRET_ACCESS_KEY"] != "" || bedrock.Env["AZURE_CLIENT_ID"] != "" {
		t.Fatalf("bedrock env %v", bedrock.Env)
	}
	if !slices.Contains(bedrock.Access.ReadOnly, filepath.Dir(env["AWS_WEB_IDENTITY_TOKEN_FILE"])) || bedrock.Access.Network != pluginbox.NetworkHost || !slices.Equal(bedrock.Access.Ports, []int{80, 443}) {
		t.Fatalf("bedrock access %+v", bedrock.Access)
	}

	azure := launch("builtin/llm-azure-openai", `{"endpoint":"https://r.openai.azure.com","deployments":{"a":"b"},"auth":"workload_identity"}`)
	if azure.Env["AZURE_FEDERATED_TOKEN_FILE"] == "" || azure.Env["AZURE_CLIENT_SECRET"] != "" || azure.Env["AWS_ROLE_ARN"] != "" ||
		!slices.Contains(azure.Access.ReadOnly, "/var/run/secrets/azure/tokens") || !slices.Equal(azure.Access.Ports, []int{80, 443}) {
		t.Fatalf("azure %v %+v", azure.Env, azure.Access)
	}

	// A static credential in the config: no identity, but the API port.
	static := launch("builtin/llm-bedrock", `{"region":"us-east-1","models":["m"],"access_key_id":"AKIA","secret_access_key":"s"}`)
	if len(static.Env) != 0 || !slices.Equal(static.Access.Ports, []int{443}) {
		t.Fatalf("static keys: %v %+v", static.Env, static.Access)
	}
	keyed := launch("builtin/llm-azure-openai", `{"endpoint":"https://r.openai.azure.com","deployments":{"a":"b"},"api_key":"k"}`)
	if len(keyed.Env) != 0 || slices.Contains(keyed.Access.Ports, 80) {
		t.Fatalf("api key: %v %+v", keyed.Env, keyed.Access)
	}

	// Any other plugin, including one whose name merely ends alike.
	for _, src := range []string{"builtin/llm-openai", "example.com/acme/llm-bedrock", "/opt/plugins/llm-bedrock"} {
		if other := launch(src, `{"base_url":"https://api.example.com/v1"}`); len(other.Env) != 0 || slices.Contains(other.Access.Ports, 80) {
			t.Fatalf("%s got %v %+v", src, other.Env, other.Access)
		}
	}
}
