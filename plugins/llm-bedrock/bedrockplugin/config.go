package bedrockplugin

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/schema"
)

// Config is the plugin's blueprint config block.
type Config struct {
	// Region is the AWS region of the Bedrock endpoint; empty means the
	// SDK's (AWS_REGION, the shared config profile).
	Region string `json:"region"`
	// Models are the Bedrock model ids or inference profile ids/ARNs
	// agents may name. Bedrock's runtime has no model list, so the
	// gateway learns them here.
	Models []string `json:"models"`
	// Aliases map a model name agents use to a Bedrock model id,
	// inference profile id or ARN (ARNs make poor model names).
	Aliases map[string]string `json:"aliases"`
	// EndpointURL overrides the regional endpoint: a VPC interface
	// endpoint's DNS name, or a test stand-in.
	EndpointURL string `json:"endpoint_url"`
	// AccessKeyID, SecretAccessKey and SessionToken are a referenced
	// static credential; empty means the SDK's default chain.
	AccessKeyID     string `json:"access_key_id"`
	SecretAccessKey string `json:"secret_access_key"`
	SessionToken    string `json:"session_token"`
	// Profile selects a shared config profile for the default chain.
	Profile string `json:"profile"`
	// RoleARN is assumed (sts:AssumeRole) with the base credentials.
	RoleARN string `json:"role_arn"`
	// Timeout bounds a non-streaming call, and a streaming call until its
	// response headers arrive.
	Timeout string `json:"timeout"`
	// MaxAttempts is the SDK's attempts per call (retries on throttling
	// and 5xx); 1 leaves fallback to the gateway alone.
	MaxAttempts int `json:"max_attempts"`
}

const defaultMaxAttempts = 3

var (
	regionRe  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d+$`)
	roleARNRe = regexp.MustCompile(`^arn:aws[a-z-]*:iam::\d{12}:role/.+$`)
)

func configSchema() *schema.Schema {
	return &schema.Schema{Block: schema.Block{
		Description: "Amazon Bedrock through the Converse API, signed with AWS credentials (workload identity or a referenced key).",
		Attributes: []schema.Attribute{
			{Name: "region", Description: "AWS region such as us-east-1; default: AWS_REGION or the profile's region."},
			{Name: "models", Type: "list(string)", Description: "Bedrock model ids or inference profile ids (us.anthropic.claude-…) agents may use."},
			{Name: "aliases", Type: "map(string)", Description: "Model names agents use mapped to a Bedrock model id, inference profile id or ARN."},
			{Name: "endpoint_url", Description: "Endpoint instead of bedrock-runtime.<region>.amazonaws.com (a VPC interface endpoint's DNS name)."},
			{Name: "access_key_id", Credential: true, Sensitive: true, Description: `Static key id as credential("NAME"); omit to use the SDK's default chain (Pod Identity, IRSA, instance role).`},
			{Name: "secret_access_key", Credential: true, Sensitive: true, Description: `Static secret key as credential("NAME"), with access_key_id.`},
			{Name: "session_token", Credential: true, Sensitive: true, Description: `Session token of temporary static credentials, as credential("NAME").`},
			{Name: "profile", Description: "Shared config profile for the default chain."},
			{Name: "role_arn", Description: "IAM role to assume with the base credentials (arn:aws:iam::123456789012:role/name)."},
			{Name: "timeout", Default: json.RawMessage(`"120s"`), Description: "Bound on a non-streaming call, and on a streaming call until its headers arrive (Go duration)."},
			{Name: "max_attempts", Type: "number", Default: json.RawMessage(`3`), Description: "Attempts per call, retrying throttling and 5xx; 1 leaves fallback to the gateway."},
		},
	}}
}

func parseConfig(raw json.RawMessage) (Config, time.Duration, []plugin.Diagnostic) {
	c := Config{Timeout: "120s", MaxAttempts: defaultMaxAttempts}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &c); err != nil {
			return c, 0, []plugin.Diagnostic{plugin.Errorf(nil, "config is not valid JSON for llm-bedrock: %v", err)}
		}
	}
	var diags []plugin.Diagnostic
	if c.Region != "" && !regionRe.MatchString(c.Region) {
		diags = append(diags, plugin.Errorf([]string{"region"}, "region %q is not an AWS region name such as us-east-1", c.Region))
	}
	if len(c.Models) == 0 && len(c.Aliases) == 0 {
		diags = append(diags, plugin.Errorf([]string{"models"}, `name the models agents may use: models = ["anthropic.claude-3-5-haiku-20241022-v1:0"] (Bedrock's runtime cannot list them)`))
	}
	for i, m := range c.Models {
		if strings.TrimSpace(m) == "" {
			diags = append(diags, plugin.Errorf([]string{"models", fmt.Sprint(i)}, "model id is empty"))
		}
	}
	for k, v := range c.Aliases {
		if strings.TrimSpace(k) == "" || strings.TrimSpace(v) == "" {
			diags = append(diags, plugin.Errorf([]string{"aliases", k}, "an alias needs a name and a Bedrock model id"))
		}
	}
	if c.EndpointURL != "" {
		c.EndpointURL = strings.TrimRight(c.EndpointURL, "/")
		if u, err := url.Parse(c.EndpointURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			diags = append(diags, plugin.Errorf([]string{"endpoint_url"}, "endpoint_url %q must be an http(s) URL such as https://vpce-0123-abcd.bedrock-runtime.us-east-1.vpce.amazonaws.com", c.EndpointURL))
		}
	}
	if (c.AccessKeyID == "") != (c.SecretAccessKey == "") {
		diags = append(diags, plugin.Errorf([]string{"access_key_id"}, "set both access_key_id and secret_access_key, or neither to use the SDK's default credential chain"))
	}
	if c.SessionToken != "" && c.AccessKeyID == "" {
		diags = append(diags, plugin.Errorf([]string{"session_token"}, "session_token needs access_key_id and secret_access_key"))
	}
	for name, v := range map[string]string{"access_key_id": c.AccessKeyID, "secret_access_key": c.SecretAccessKey, "session_token": c.SessionToken} {
		if strings.ContainsAny(v, "\r\n") {
			diags = append(diags, plugin.Errorf([]string{name}, "%s contains a line break; re-add the credential without it", name))
		}
	}
	if c.RoleARN != "" && !roleARNRe.MatchString(c.RoleARN) {
		diags = append(diags, plugin.Errorf([]string{"role_arn"}, "role_arn %q is not an IAM role ARN such as arn:aws:iam::123456789012:role/bedrock-caller", c.RoleARN))
	}
	if c.Timeout == "" {
		c.Timeout = "120s"
	}
	d, err := time.ParseDuration(c.Timeout)
	if err != nil || d <= 0 {
		diags = append(diags, plugin.Errorf([]string{"timeout"}, "timeout %q must be a positive Go duration such as 60s", c.Timeout))
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = defaultMaxAttempts
	}
	if c.MaxAttempts < 1 || c.MaxAttempts > 10 {
		diags = append(diags, plugin.Errorf([]string{"max_attempts"}, "max_attempts %d must be between 1 and 10", c.MaxAttempts))
	}
	return c, d, diags
}

// modelID is the Bedrock id for a model name agents use.
func (c Config) modelID(name string) string {
	if id, ok := c.Aliases[name]; ok {
		return id
	}
	return name
}
