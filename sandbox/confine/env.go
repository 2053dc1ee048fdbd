package confine

import (
	"fmt"
	"strings"
)

// SandboxPath is the PATH every sandboxed process starts with.
const SandboxPath = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"

// driverEnv are the variables the driver owns; a Spec may not override them.
var driverEnv = map[string]bool{
	"PATH": true, "HOME": true, "TMPDIR": true, "NEMOCLAVE_SANDBOX": true,
	"HTTP_PROXY": true, "HTTPS_PROXY": true, "ALL_PROXY": true, "NO_PROXY": true,
	"http_proxy": true, "https_proxy": true, "all_proxy": true, "no_proxy": true,
	"OPENAI_BASE_URL": true, "ANTHROPIC_BASE_URL": true, "NEMOCLAVE_MCP_URL": true, "NEMOCLAVE_API_URL": true,
}

var secretWords = []string{"TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "CREDENTIALS", "APIKEY"}

// CheckEnvName refuses variables the driver owns and names that look like
// credentials: the gateway injects credentials, the agent never holds one.
func CheckEnvName(k string) error {
	if k == "" || strings.ContainsAny(k, "=\x00") {
		return fmt.Errorf("environment variable name %q is invalid", k)
	}
	if driverEnv[k] {
		return fmt.Errorf("environment variable %s is set by the driver to point at the gateway; remove it from the agent's env", k)
	}
	up := strings.ToUpper(k)
	secret := strings.HasSuffix(up, "API_KEY") || strings.HasSuffix(up, "ACCESS_KEY") ||
		strings.HasSuffix(up, "ACCESS_KEY_ID") || strings.HasSuffix(up, "PRIVATE_KEY")
	for _, part := range strings.Split(up, "_") {
		for _, w := range secretWords {
			if part == w {
				secret = true
			}
		}
	}
	if secret {
		return fmt.Errorf("environment variable %s looks like a credential; credentials stay in the gateway, which injects them — declare it with credential() on the plugin instead", k)
	}
	return nil
}
