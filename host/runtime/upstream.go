package runtime

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/nemoclave/nemoclave/gateway/egress"
)

// EnvUpstreamProxy returns the corporate proxy the environment names, in
// the order curl and Go's HTTP clients read it: HTTPS_PROXY, https_proxy.
// The daemon's --upstream-proxy defaults to it.
func EnvUpstreamProxy() string {
	return firstEnv("NEMOCLAVE_UPSTREAM_PROXY", "HTTPS_PROXY", "https_proxy")
}

// EnvNoProxy returns NO_PROXY (or no_proxy), the default of --no-proxy.
func EnvNoProxy() string { return firstEnv("NEMOCLAVE_NO_PROXY", "NO_PROXY", "no_proxy") }

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

// egressConfig is the gateway's egress configuration for these options:
// the audit directory, and the corporate network (upstream proxy, the
// targets exempt from it, the corporate CA bundle). It fails closed: a
// proxy or CA bundle that was asked for but cannot be used stops the
// daemon, rather than letting sandboxes dial the internet directly or
// through an unverified TLS path.
func egressConfig(o Options) (egress.Config, error) {
	cfg := egress.Config{
		AuditDir: filepath.Join(o.Home, "audit"), Logger: o.Logger, Redact: o.Redact,
		Resolver: o.EgressResolver, UnsafeAllowLoopback: o.UnsafeAllowLoopback,
		UpstreamNoProxy: o.UpstreamNoProxy,
	}
	if o.UpstreamProxy != "" {
		u, err := parseUpstreamProxy(o.UpstreamProxy)
		if err != nil {
			return cfg, err
		}
		cfg.UpstreamProxy = u
	}
	if o.UpstreamCAFile != "" {
		pem, err := os.ReadFile(o.UpstreamCAFile)
		if err != nil {
			return cfg, fmt.Errorf("corporate CA bundle: %w; pass a readable PEM file to --upstream-ca-file (or unset NEMOCLAVE_UPSTREAM_CA_FILE)", err)
		}
		if !strings.Contains(string(pem), "-----BEGIN CERTIFICATE-----") {
			return cfg, fmt.Errorf("corporate CA bundle %s holds no PEM certificate; pass a file of -----BEGIN CERTIFICATE----- blocks to --upstream-ca-file", o.UpstreamCAFile)
		}
		cfg.UpstreamCAPEM = pem
	}
	return cfg, nil
}

// parseUpstreamProxy accepts what HTTPS_PROXY holds in practice:
// http://[user:pass@]host:port, or host:port without a scheme (read as
// http, as curl and Go do). The egress proxy speaks CONNECT over plain
// HTTP to it; an https:// or socks proxy is refused with what to use.
func parseUpstreamProxy(s string) (*url.URL, error) {
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("upstream proxy %q: %w; set --upstream-proxy (or HTTPS_PROXY) to http://host:port", s, err)
	}
	if u.Scheme != "http" || u.Hostname() == "" {
		return nil, fmt.Errorf("upstream proxy %q: only http://host:port proxies are supported (CONNECT over plain HTTP); set --upstream-proxy (or HTTPS_PROXY) to the proxy's http:// address", u.Redacted())
	}
	return u, nil
}
