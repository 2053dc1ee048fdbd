package plugins

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/nemoclave/nemoclave/sdk/plugin"
)

// passedThrough are the only host variables a plugin sees. Everything else
// in the host's environment (provider keys, cloud credentials, tokens) stays
// in the host: credentials reach a plugin through its resolved config, never
// its environment.
var passedThrough = []string{"PATH", "TMPDIR", "LANG", "TZ", logLevelEnv}

// pycacheEnv keeps Python's bytecode cache out of a plugin's directory.
const pycacheEnv = "PYTHONPYCACHEPREFIX"

// logLevelEnv sets the plugin's hclog level (read by plugin.Serve).
const logLevelEnv = "NEMOCLAVE_PLUGIN_LOG_LEVEL"

// defaultPath is used when the host has no PATH, so plugins that exec
// helpers still find the system ones.
const defaultPath = "/usr/local/bin:/usr/bin:/bin"

// environ builds a plugin's complete environment: the allow list from the
// host, HOME set to the plugin's own state dir (so nothing it caches lands
// in the user's home), then the explicit per-plugin additions.
func (m *Manager) environ(stateDir string, extra map[string]string) ([]string, error) {
	vars := map[string]string{}
	for _, k := range passedThrough {
		if v, ok := m.lookupEnv(k); ok {
			vars[k] = v
		}
	}
	if vars["PATH"] == "" {
		vars["PATH"] = defaultPath
	}
	if _, ok := vars[logLevelEnv]; !ok {
		vars[logLevelEnv] = strings.ToLower(m.logger.GetLevel().String())
	}
	vars["HOME"] = stateDir
	// Python writes and reads compiled modules under this prefix instead of
	// __pycache__ beside its sources: an installed directory plugin stays
	// exactly the tree that was hashed (run unconfined as root, Python
	// would otherwise write into it and the next launch be refused), and a
	// planted __pycache__ in it is never loaded.
	vars[pycacheEnv] = filepath.Join(stateDir, ".cache", "pycache")
	for k, v := range extra {
		if err := checkExtraEnv(k); err != nil {
			return nil, err
		}
		vars[k] = v
	}
	out := make([]string, 0, len(vars))
	for k, v := range vars {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out, nil
}

// checkExtraEnv refuses additions that would break the handshake or the
// state dir: go-plugin's own variables and the cookie are set by the launch.
func checkExtraEnv(k string) error {
	switch {
	case k == "" || strings.ContainsAny(k, "=\x00"):
		return fmt.Errorf("plugin env: invalid variable name %q", k)
	case k == "HOME":
		return fmt.Errorf("plugin env: HOME is the plugin's state dir and cannot be set; use state_dir instead")
	case k == plugin.Handshake.MagicCookieKey || strings.HasPrefix(k, "PLUGIN_"):
		return fmt.Errorf("plugin env: %s is reserved for the plugin handshake", k)
	}
	return nil
}

func osLookupEnv(k string) (string, bool) { return os.LookupEnv(k) }
