package azureplugin

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/nemoclave/nemoclave/internal/llmhttp"
	"github.com/nemoclave/nemoclave/sdk/status"
)

// publicAuthorities are Entra's own clouds, where MSAL's instance
// discovery (a call to login.microsoftonline.com) is meaningful; any other
// authority is a private cloud or a stand-in, where it must be off.
var publicAuthorities = map[string]bool{"login.microsoftonline.com": true, "login.microsoftonline.us": true, "login.chinacloudapi.cn": true}

// newCredential builds the Entra credential for c.Auth (nil for api_key).
// transport is nil in production (azcore's default client); tests pass
// one that trusts their TLS stand-in.
func newCredential(c Config, transport policy.Transporter) (azcore.TokenCredential, error) {
	opts := azcore.ClientOptions{Transport: transport}
	disableDiscovery := false
	if c.AuthorityHost != "" {
		opts.Cloud = cloud.Configuration{ActiveDirectoryAuthorityHost: c.AuthorityHost}
		if u, err := url.Parse(c.AuthorityHost); err == nil && !publicAuthorities[strings.ToLower(u.Hostname())] {
			disableDiscovery = true
		}
	}
	var (
		cred azcore.TokenCredential
		err  error
	)
	switch c.Auth {
	case authAPIKey:
		return nil, nil
	case authClientSecret:
		cred, err = azidentity.NewClientSecretCredential(c.TenantID, c.ClientID, c.ClientSecret,
			&azidentity.ClientSecretCredentialOptions{ClientOptions: opts, DisableInstanceDiscovery: disableDiscovery})
	case authWorkloadIdentity:
		cred, err = azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{ClientOptions: opts,
			ClientID: c.ClientID, TenantID: c.TenantID, TokenFilePath: c.TokenFile, DisableInstanceDiscovery: disableDiscovery})
	case authManagedIdentity:
		o := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: opts}
		if c.ClientID != "" {
			o.ID = azidentity.ClientID(c.ClientID)
		}
		cred, err = azidentity.NewManagedIdentityCredential(o)
	default:
		cred, err = azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{ClientOptions: opts,
			TenantID: c.TenantID, DisableInstanceDiscovery: disableDiscovery})
	}
	if err != nil {
		return nil, fmt.Errorf("llm-azure-openai: %s credential: %v (%s)", c.Auth, err, authHint(c.Auth))
	}
	return cred, nil
}

func authHint(mode string) string {
	switch mode {
	case authWorkloadIdentity:
		return "on AKS, label the pod azure.workload.identity/use=true and annotate its service account with azure.workload.identity/client-id, so AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_FEDERATED_TOKEN_FILE are set; or set client_id, tenant_id and token_file"
	case authManagedIdentity:
		return "assign a managed identity to the VM or node pool, and set client_id when it is user-assigned"
	case authClientSecret:
		return "check tenant_id, client_id and the client_secret credential on the app registration"
	}
	return "give the daemon a workload or managed identity, or set auth and its settings explicitly"
}

// token returns a current Entra token; the credential caches it and
// fetches a new one before it expires.
func token(ctx context.Context, cred azcore.TokenCredential, c Config) (string, error) {
	tk, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{c.Scope}})
	if err != nil {
		if ctx.Err() != nil {
			return "", status.Errorf(status.DeadlineExceeded, "no Entra token for Azure OpenAI in time: %v", ctx.Err())
		}
		return "", status.Errorf(status.Unauthenticated, "no Entra token for Azure OpenAI (%s auth): %s (%s)", c.Auth, summary(err.Error(), c), authHint(c.Auth))
	}
	return tk.Token, nil
}

// summary folds azidentity's multi-line error report (request, response,
// troubleshooting link) into one bounded line without the secret.
func summary(s string, c Config) string {
	var words []string
	for _, w := range strings.Fields(llmhttp.Redact(s, c.ClientSecret)) {
		if strings.Trim(w, "-") != "" { // azidentity's separator lines
			words = append(words, w)
		}
	}
	s = strings.Join(words, " ")
	if len(s) > 600 {
		s = s[:600] + "…"
	}
	return s
}
