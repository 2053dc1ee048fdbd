package azureplugin

import (
	"encoding/json"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/schema"
)

// Config is the plugin's blueprint config block.
type Config struct {
	// Endpoint is the resource's endpoint, https://NAME.openai.azure.com
	// (or a private endpoint's name that resolves to it).
	Endpoint string `json:"endpoint"`
	// APIVersion is sent as ?api-version=.
	APIVersion string `json:"api_version"`
	// Deployments map the model names agents use to deployment names.
	Deployments map[string]string `json:"deployments"`
	// Auth picks the credential: api_key, workload_identity,
	// managed_identity, client_secret or default (azidentity's chain);
	// empty means api_key when one is set, client_secret when a secret is
	// set, else default.
	Auth string `json:"auth"`
	// APIKey is sent as the api-key header (credential("NAME")).
	APIKey string `json:"api_key"`
	// TenantID and ClientID name the Entra application or the managed
	// identity (default: AZURE_TENANT_ID, AZURE_CLIENT_ID).
	TenantID string `json:"tenant_id"`
	ClientID string `json:"client_id"`
	// ClientSecret is the application's secret (credential("NAME")).
	ClientSecret string `json:"client_secret"`
	// TokenFile is the federated token workload identity presents
	// (default: AZURE_FEDERATED_TOKEN_FILE, set by the AKS webhook).
	TokenFile string `json:"token_file"`
	// AuthorityHost is the Entra endpoint (default: AZURE_AUTHORITY_HOST,
	// else https://login.microsoftonline.com/); sovereign clouds set it.
	AuthorityHost string `json:"authority_host"`
	// Scope of the token requested.
	Scope string `json:"scope"`
	// Headers are added to every request.
	Headers map[string]string `json:"headers"`
	// Timeout bounds a non-streaming request (and a token fetch), and a
	// streaming request until its response headers arrive.
	Timeout string `json:"timeout"`
}

const (
	defaultAPIVersion = "2024-10-21"
	defaultScope      = "https://cognitiveservices.azure.com/.default"
)

// Auth modes.
const (
	authAPIKey           = "api_key"
	authWorkloadIdentity = "workload_identity"
	authManagedIdentity  = "managed_identity"
	authClientSecret     = "client_secret"
	authDefault          = "default"
)

var (
	apiVersionRe = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}(-preview)?$`)
	guidRe       = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
)

func configSchema() *schema.Schema {
	return &schema.Schema{Block: schema.Block{
		Description: "Azure OpenAI deployments with Microsoft Entra ID (workload identity, managed identity, client secret) or an api-key.",
		Attributes: []schema.Attribute{
			{Name: "endpoint", Required: true, Description: "The resource endpoint, https://NAME.openai.azure.com."},
			{Name: "api_version", Default: json.RawMessage(`"` + defaultAPIVersion + `"`), Description: "The api-version query parameter."},
			{Name: "deployments", Type: "map(string)", Required: true, Description: "Model names agents use mapped to deployment names."},
			{Name: "auth", Description: "api_key, workload_identity, managed_identity, client_secret or default; empty picks api_key or client_secret when set, else default."},
			{Name: "api_key", Credential: true, Sensitive: true, Description: `API key as credential("NAME"), sent as the api-key header.`},
			{Name: "tenant_id", Description: "Entra tenant id (default AZURE_TENANT_ID)."},
			{Name: "client_id", Description: "Application or managed identity client id (default AZURE_CLIENT_ID)."},
			{Name: "client_secret", Credential: true, Sensitive: true, Description: `Application secret as credential("NAME"), for auth = "client_secret".`},
			{Name: "token_file", Description: "Federated token file for workload identity (default AZURE_FEDERATED_TOKEN_FILE)."},
			{Name: "authority_host", Description: "Entra authority (default AZURE_AUTHORITY_HOST, else https://login.microsoftonline.com/)."},
			{Name: "scope", Default: json.RawMessage(`"` + defaultScope + `"`), Description: "Scope of the Entra token."},
			{Name: "headers", Type: "map(string)", Description: "Extra headers sent with every request."},
			{Name: "timeout", Default: json.RawMessage(`"120s"`), Description: "Bound on a non-streaming request and a token fetch, and on a streaming request until its headers arrive (Go duration)."},
		},
	}}
}

func parseConfig(raw json.RawMessage) (Config, time.Duration, []plugin.Diagnostic) {
	c := Config{APIVersion: defaultAPIVersion, Scope: defaultScope, Timeout: "120s"}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &c); err != nil {
			return c, 0, []plugin.Diagnostic{plugin.Errorf(nil, "config is not valid JSON for llm-azure-openai: %v", err)}
		}
	}
	var diags []plugin.Diagnostic
	add := func(path, format string, args ...any) {
		diags = append(diags, plugin.Errorf([]string{path}, format, args...))
	}
	c.Endpoint = strings.TrimRight(c.Endpoint, "/")
	if u, err := url.Parse(c.Endpoint); err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && loopback(u.Hostname()))) {
		add("endpoint", "endpoint %q must be an https URL such as https://NAME.openai.azure.com (http only to loopback: a token or key would travel in clear)", c.Endpoint)
	}
	if c.APIVersion == "" {
		c.APIVersion = defaultAPIVersion
	}
	if !apiVersionRe.MatchString(c.APIVersion) {
		add("api_version", "api_version %q is not an Azure OpenAI API version such as %s", c.APIVersion, defaultAPIVersion)
	}
	if len(c.Deployments) == 0 {
		add("deployments", `name the deployments agents may use: deployments = { "gpt-4o" = "my-gpt-4o-deployment" }`)
	}
	for k, v := range c.Deployments {
		if strings.TrimSpace(k) == "" || strings.TrimSpace(v) == "" || strings.Contains(v, "/") {
			add("deployments", "deployment %q = %q: a model name needs a deployment name without '/'", k, v)
		}
	}
	if c.Auth == "" {
		switch {
		case c.APIKey != "":
			c.Auth = authAPIKey
		case c.ClientSecret != "":
			c.Auth = authClientSecret
		default:
			c.Auth = authDefault
		}
	}
	switch c.Auth {
	case authAPIKey:
		if c.APIKey == "" {
			add("api_key", `auth = "api_key" needs api_key = credential("AZURE_OPENAI_API_KEY")`)
		}
	case authClientSecret:
		if c.ClientSecret == "" || c.TenantID == "" || c.ClientID == "" {
			add("client_secret", `auth = "client_secret" needs tenant_id, client_id and client_secret = credential("NAME")`)
		}
	case authWorkloadIdentity, authManagedIdentity, authDefault:
	default:
		add("auth", "auth %q is not one of api_key, workload_identity, managed_identity, client_secret, default", c.Auth)
	}
	if c.Auth != authAPIKey && c.APIKey != "" {
		add("api_key", "api_key is set but auth is %q; remove one of them", c.Auth)
	}
	for name, v := range map[string]string{"tenant_id": c.TenantID, "client_id": c.ClientID} {
		if v != "" && !guidRe.MatchString(v) && !(name == "tenant_id" && strings.Contains(v, ".")) {
			add(name, "%s %q is not a GUID (find it on the app registration or managed identity overview page)", name, v)
		}
	}
	if c.AuthorityHost != "" {
		if u, err := url.Parse(c.AuthorityHost); err != nil || u.Scheme != "https" || u.Host == "" {
			add("authority_host", "authority_host %q must be an https URL such as https://login.microsoftonline.us/", c.AuthorityHost)
		}
	}
	if c.Scope == "" {
		c.Scope = defaultScope
	}
	for k := range c.Headers {
		if strings.EqualFold(k, "Authorization") || strings.EqualFold(k, "api-key") {
			add("headers", "set the credential with auth and api_key or an Entra identity, not the %s header, so it is never written in a blueprint", k)
		}
	}
	for name, v := range map[string]string{"api_key": c.APIKey, "client_secret": c.ClientSecret} {
		if strings.ContainsAny(v, "\r\n") {
			add(name, "%s contains a line break; re-add the credential without it", name)
		}
	}
	if c.Timeout == "" {
		c.Timeout = "120s"
	}
	d, err := time.ParseDuration(c.Timeout)
	if err != nil || d <= 0 {
		add("timeout", "timeout %q must be a positive Go duration such as 60s", c.Timeout)
	}
	return c, d, diags
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
