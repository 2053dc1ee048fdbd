package runtime

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nemoclave/nemoclave/host/plugins"
	"github.com/nemoclave/nemoclave/sandbox/pluginbox"
)

// Plugins get no host environment (host/plugins/env.go): credentials
// reach them through their resolved config. A workload identity is not a
// credential the daemon holds, though; it is the environment itself
// (variables naming a projected token file, a credentials endpoint, the
// instance metadata service). So the daemon hands exactly those
// variables, read access to the token files and the ports of the identity
// endpoints to its own cloud model plugins, and to no other plugin.
//
// Static keys are never among the variables (AWS_ACCESS_KEY_ID,
// AZURE_CLIENT_SECRET, shared credentials files): they go through
// credential("NAME") like every other secret. A plugin whose config
// names a static credential gets nothing here.
var cloudIdentities = map[string]struct {
	env, files []string
	static     func(cfg map[string]any) bool
}{
	"builtin/llm-bedrock": {
		env: []string{"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_SESSION_NAME",
			"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
			"AWS_STS_REGIONAL_ENDPOINTS", "AWS_ENDPOINT_URL_STS", "AWS_EC2_METADATA_DISABLED", "AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_CA_BUNDLE"},
		files:  []string{"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_CA_BUNDLE"},
		static: func(cfg map[string]any) bool { return cfg["access_key_id"] != nil },
	},
	"builtin/llm-azure-openai": {
		env: []string{"AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_AUTHORITY_HOST",
			"IDENTITY_ENDPOINT", "IDENTITY_HEADER", "IDENTITY_SERVER_THUMBPRINT", "IMDS_ENDPOINT", "MSI_ENDPOINT", "MSI_SECRET"},
		files: []string{"AZURE_FEDERATED_TOKEN_FILE"},
		static: func(cfg map[string]any) bool {
			return cfg["api_key"] != nil || cfg["client_secret"] != nil || cfg["auth"] == "api_key" || cfg["auth"] == "client_secret"
		},
	},
}

// cloudIdentity adds the daemon's workload identity to spec when source
// is one of the built-in cloud model plugins and its config names no
// static credential. Either way such a plugin may connect to port 443:
// Bedrock's regional endpoint is derived from the region, never written
// in the config where pluginAccess would find it. With the identity it
// may also reach port 80: the instance metadata services
// (169.254.169.254) and the EKS Pod Identity agent (169.254.170.23).
// lookup reads the daemon's environment.
func cloudIdentity(source string, cfg json.RawMessage, spec *plugins.Spec, lookup func(string) (string, bool)) {
	id, ok := cloudIdentities[strings.SplitN(source, "@", 2)[0]]
	if !ok {
		return
	}
	allowPort(spec.Access, 443)
	var c map[string]any
	_ = json.Unmarshal(cfg, &c)
	if id.static(c) {
		return
	}
	for _, k := range id.env {
		if v, ok := lookup(k); ok && v != "" {
			if spec.Env == nil {
				spec.Env = map[string]string{}
			}
			spec.Env[k] = v
		}
	}
	if spec.Access == nil {
		return
	}
	for _, k := range id.files {
		v, ok := lookup(k)
		if !ok || !filepath.IsAbs(v) {
			continue
		}
		// The directory, not the file: kubelet rotates a projected token
		// by swapping a symlink in it, which a bind of the old file would
		// never see.
		if dir := filepath.Dir(filepath.Clean(v)); dir != "/" && !slices.Contains(spec.Access.ReadOnly, dir) {
			spec.Access.ReadOnly = append(spec.Access.ReadOnly, dir)
		}
	}
	allowPort(spec.Access, 80)
}

func allowPort(p *pluginbox.Profile, port int) {
	if p == nil {
		return
	}
	// The metadata service is a host-network address: forwarded
	// addresses become ports of the host network.
	for _, f := range p.Forwards {
		if !slices.Contains(p.Ports, f.Port) {
			p.Ports = append(p.Ports, f.Port)
		}
	}
	p.Forwards = nil
	p.Network = pluginbox.NetworkHost
	if !slices.Contains(p.Ports, port) {
		p.Ports = append(p.Ports, port)
		slices.Sort(p.Ports)
	}
}
