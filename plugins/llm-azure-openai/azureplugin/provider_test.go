package azureplugin

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/internal/cloudstandin"
	"github.com/nemoclave/nemoclave/sdk/llm"
	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/sdktest"
	"github.com/nemoclave/nemoclave/sdk/status"
)

const (
	testSecret = "azure-client-secret-0123456789~SECRET"
	testAPIKey = "0123456789abcdef0123456789abcdefKEY"
)

var testDeployments = map[string]string{"gpt-4o": "gpt-test", "busy": "fail-429", "broken": "fail-500", "bad": "fail-400", "missing": "no-such-deployment"}

func azureConfig(a *cloudstandin.Azure, e *cloudstandin.Entra, extra map[string]any) string {
	m := map[string]any{"endpoint": a.URL, "deployments": testDeployments, "timeout": "60s"}
	if e != nil {
		m["authority_host"] = e.URL + "/"
		m["tenant_id"], m["client_id"] = cloudstandin.Tenant, cloudstandin.ClientID
	}
	for k, v := range extra {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// newPlugin is a plugin whose Entra requests trust the stand-in's TLS
// certificate (in production: the system roots).
func newPlugin(e *cloudstandin.Entra) *Plugin {
	p := New()
	if e != nil {
		p.entraTransport = e.Client()
	}
	return p
}

func azureProvider(t *testing.T, p *Plugin, cfg string) llm.Provider {
	t.Helper()
	c := plugin.InProcess(t, p)
	if diags, err := c.Configure(context.Background(), plugin.ConfigureOptions{Config: json.RawMessage(cfg)}); err != nil || len(diags) > 0 {
		t.Fatalf("configure: %v %v", err, diags)
	}
	return c.LLM()
}

func hello() *llm.ChatRequest {
	return &llm.ChatRequest{Model: "gpt-4o", Messages: []llm.Message{{Role: llm.RoleUser, Content: []llm.ContentPart{llm.Text("hello")}}}}
}

// TestAzureOpenAIConformanceClientSecret runs the SDK's LLM suite with an
// Entra client-secret credential; every call's bearer token is verified
// by the Azure stand-in, and the one token is cached across the calls.
func TestAzureOpenAIConformanceClientSecret(t *testing.T) {
	t.Parallel()
	e := cloudstandin.StartEntra(t, testSecret, "")
	a := cloudstandin.StartAzure(t, e, "")
	sdktest.LLM(t, newPlugin(e), sdktest.WithConfig(azureConfig(a, e, map[string]any{"client_secret": testSecret})),
		sdktest.WithModel("gpt-4o"), sdktest.WithDeterministic())
	tokens, h, q := a.Seen()
	if len(tokens) < 4 || e.Count() != 1 {
		t.Fatalf("%d calls carried a verified token, the token endpoint issued %d (want one, cached)", len(tokens), e.Count())
	}
	if q != "api-version="+defaultAPIVersion || h.Get("api-key") != "" {
		t.Fatalf("query %q, api-key header %q", q, h.Get("api-key"))
	}
}

// TestAzureOpenAIWorkloadIdentityTokenRefresh is AKS workload identity:
// the federated token file is exchanged for an Entra token; the first one
// lives just over MSAL's five-minute refresh margin, so the credential
// fetches a new one before it expires, and the stand-in sees it.
func TestAzureOpenAIWorkloadIdentityTokenRefresh(t *testing.T) {
	t.Parallel()
	federated := "eyJhbGciOiJSUzI1NiJ9.aks-service-account-token.sig"
	file := filepath.Join(t.TempDir(), "azure-identity-token")
	if err := os.WriteFile(file, []byte(federated), 0o600); err != nil {
		t.Fatal(err)
	}
	e := cloudstandin.StartEntra(t, "", federated, 303, 3600)
	a := cloudstandin.StartAzure(t, e, "")
	p := azureProvider(t, newPlugin(e), azureConfig(a, e, map[string]any{"auth": "workload_identity", "token_file": file}))
	ctx := context.Background()
	if resp, err := p.Chat(ctx, hello()); err != nil || resp.Message.Text() != "echo: hello" || resp.Model != "gpt-4o" {
		t.Fatalf("first call: %v %+v", err, resp)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for e.Count() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no new token two minutes into the first one's refresh margin")
		}
		time.Sleep(500 * time.Millisecond)
		if _, err := p.Chat(ctx, hello()); err != nil {
			t.Fatalf("call during refresh: %v", err)
		}
	}
	tokens, _, _ := a.Seen()
	if tokens[0] != "token-1" || tokens[len(tokens)-1] != "token-2" {
		t.Fatalf("tokens seen %v, want token-1 first and the refreshed token-2 last", tokens)
	}
	// The refreshed token is long-lived and cached.
	if _, err := p.Chat(ctx, hello()); err != nil || e.Count() != 2 {
		t.Fatalf("after refresh: %v, %d tokens issued", err, e.Count())
	}
}

func TestAzureOpenAIAPIKeyToolsAndErrors(t *testing.T) {
	t.Parallel()
	a := cloudstandin.StartAzure(t, nil, testAPIKey)
	p := azureProvider(t, New(), azureConfig(a, nil, map[string]any{"api_key": testAPIKey, "api_version": "2025-01-01-preview"}))
	ctx := context.Background()
	req := hello()
	req.Tools = []llm.Tool{{Name: "lookup", Parameters: json.RawMessage(`{"type":"object"}`)}}
	resp, err := p.Chat(ctx, req)
	if err != nil || len(resp.Message.ToolCalls) != 1 || resp.FinishReason != llm.FinishToolCalls {
		t.Fatalf("%v %+v", err, resp)
	}
	req.Messages = append(req.Messages, llm.Message{Role: llm.RoleAssistant, ToolCalls: resp.Message.ToolCalls},
		llm.Message{Role: llm.RoleTool, ToolCallID: resp.Message.ToolCalls[0].ID, Content: []llm.ContentPart{llm.Text("42")}})
	var chunks []*llm.ChatChunk
	if err := p.ChatStream(ctx, req, func(c *llm.ChatChunk) error { chunks = append(chunks, c); return nil }); err != nil {
		t.Fatal(err)
	}
	if final := llm.Accumulate(chunks); final.Message.Text() != "tool said: 42" || final.Usage.OutputTokens == 0 || final.Model != "gpt-4o" {
		t.Fatalf("%+v", final)
	}
	_, h, q := a.Seen()
	if h.Get("api-key") != testAPIKey || h.Get("Authorization") != "" || q != "api-version=2025-01-01-preview" {
		t.Fatalf("headers %v query %q", h, q)
	}
	for model, want := range map[string]status.Code{"busy": status.RateLimited, "broken": status.Unavailable, "bad": status.InvalidArgument, "missing": status.NotFound, "unmapped": status.NotFound} {
		_, err := p.Chat(ctx, &llm.ChatRequest{Model: model, Messages: hello().Messages})
		if status.CodeOf(err) != want || strings.Contains(err.Error(), testAPIKey) {
			t.Errorf("%s: %v, want %v", model, err, want)
		}
	}
	wrong := azureProvider(t, New(), azureConfig(a, nil, map[string]any{"api_key": "wrong-key-000000000000000000000"}))
	if _, err := wrong.Chat(ctx, hello()); status.CodeOf(err) != status.Unauthenticated || strings.Contains(err.Error(), "wrong-key") {
		t.Fatalf("wrong key: %v", err)
	}
}

// TestAzureOpenAIRefusesUntrustedTokens: a token from another issuer's
// key is refused by the resource, and a wrong client secret never gets a
// token; both surface as Unauthenticated with what to check.
func TestAzureOpenAIRefusesUntrustedTokens(t *testing.T) {
	t.Parallel()
	trusted := cloudstandin.StartEntra(t, testSecret, "")
	other := cloudstandin.StartEntra(t, testSecret, "")
	a := cloudstandin.StartAzure(t, trusted, "")
	ctx := context.Background()
	p := azureProvider(t, newPlugin(other), azureConfig(a, other, map[string]any{"client_secret": testSecret}))
	if _, err := p.Chat(ctx, hello()); status.CodeOf(err) != status.Unauthenticated || !strings.Contains(err.Error(), "signature") {
		t.Fatalf("foreign token: %v", err)
	}
	bad := azureProvider(t, newPlugin(trusted), azureConfig(a, trusted, map[string]any{"client_secret": "wrong-secret-00000000000000"}))
	_, err := bad.Chat(ctx, hello())
	if status.CodeOf(err) != status.Unauthenticated || !strings.Contains(err.Error(), "AADSTS7000215") || strings.Contains(err.Error(), "wrong-secret") {
		t.Fatalf("wrong secret: %v", err)
	}
	if tokens, _, _ := a.Seen(); len(tokens) != 0 {
		t.Fatalf("the resource accepted %v", tokens)
	}
}

// TestAzureOpenAIManagedIdentity takes the token from the local managed
// identity endpoint (IDENTITY_ENDPOINT and IDENTITY_HEADER, as App Service
// and Azure Arc set them); the resource verifies it like any Entra token.
func TestAzureOpenAIManagedIdentity(t *testing.T) {
	e := cloudstandin.StartEntra(t, "", "")
	mi := httptest.NewServer(e.ManagedIdentity("mi-header-secret"))
	t.Cleanup(mi.Close)
	t.Setenv("IDENTITY_ENDPOINT", mi.URL+"/msi/token")
	t.Setenv("IDENTITY_HEADER", "mi-header-secret")
	for _, k := range []string{"IDENTITY_SERVER_THUMBPRINT", "IMDS_ENDPOINT", "MSI_ENDPOINT", "MSI_SECRET", "AZURE_POD_IDENTITY_AUTHORITY_HOST"} {
		t.Setenv(k, "")
	}
	a := cloudstandin.StartAzure(t, e, "")
	p := azureProvider(t, New(), azureConfig(a, nil, map[string]any{"auth": "managed_identity"}))
	for range 2 {
		if resp, err := p.Chat(context.Background(), hello()); err != nil || resp.Message.Text() != "echo: hello" {
			t.Fatalf("%v %+v", err, resp)
		}
	}
	if tokens, _, _ := a.Seen(); len(tokens) != 2 || tokens[0] != "token-1" || e.Count() != 1 {
		t.Fatalf("tokens seen %v, %d issued (want one, cached)", tokens, e.Count())
	}
}

func TestAzureOpenAIConfigValidation(t *testing.T) {
	t.Parallel()
	dep := `"deployments":{"gpt-4o":"d"}`
	for raw, path := range map[string]string{
		`{` + dep + `}`: "endpoint",
		`{"endpoint":"http://myres.openai.azure.com",` + dep + `}`:                              "endpoint",
		`{"endpoint":"https://r.openai.azure.com"}`:                                             "deployments",
		`{"endpoint":"https://r.openai.azure.com","api_version":"latest",` + dep + `}`:          "api_version",
		`{"endpoint":"https://r.openai.azure.com","auth":"password",` + dep + `}`:               "auth",
		`{"endpoint":"https://r.openai.azure.com","auth":"client_secret",` + dep + `}`:          "client_secret",
		`{"endpoint":"https://r.openai.azure.com","client_id":"me",` + dep + `}`:                "client_id",
		`{"endpoint":"https://r.openai.azure.com","headers":{"Api-Key":"k"},` + dep + `}`:       "headers",
		`{"endpoint":"https://r.openai.azure.com","authority_host":"http://login",` + dep + `}`: "authority_host",
		`{"endpoint":"https://r.openai.azure.com","auth":"managed_identity",` + dep + `}`:       "",
		`{"endpoint":"http://127.0.0.1:8080","api_key":"k",` + dep + `}`:                        "",
	} {
		diags := New().ValidateConfig(context.Background(), json.RawMessage(raw))
		if path == "" && len(diags) > 0 || path != "" && (len(diags) != 1 || diags[0].Path[0] != path) {
			t.Errorf("%s: %+v, want one at %q", raw, diags, path)
		}
	}
}
