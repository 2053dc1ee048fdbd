package egress

import (
	"io"
	"net/http"
	"strconv"
	"testing"

	"github.com/nemoclave/nemoclave/policy"
)

// A plugin that fetches for a sandbox (tools-http) follows that sandbox's
// policy as it is now: a host added to it while the plugin runs is reached
// at once, a host a later revision drops is refused and its open tunnel
// closed, and nothing is reachable once the sandbox is gone.
func TestFetchFor_FollowsTheSandboxesLivePolicy(t *testing.T) {
	t.Parallel()
	_, port := rawUpstream(t, true)
	e := newEnv(t, map[string]string{"first.example": "127.0.0.1", "later.example": "127.0.0.1"})
	opaque := func(h string) policy.Endpoint {
		x := ep(h, port)
		x.AllowOpaque = true
		return x
	}
	if err := e.p.SetPolicy("sb", pol(1, policy.UnknownAsk, opaque("first.example"))); err != nil {
		t.Fatal(err)
	}
	id := PluginID("tools", "http", 1)
	// Its own policy is the snapshot taken at launch.
	addr := e.serve(t, id, PluginPolicy(id, []policy.Endpoint{opaque("first.example")}))
	if err := e.p.FetchFor(id, []string{"sb", "gone"}); err != nil {
		t.Fatal(err)
	}
	if err := e.p.FetchFor(id, []string{id}); err == nil {
		t.Fatal("an identity fetching for itself was accepted")
	}
	status := func(host string) int {
		_, _, r := connect(t, addr, host+":"+strconv.Itoa(port))
		return r.StatusCode
	}
	if s := status("first.example"); s != http.StatusOK {
		t.Fatalf("first.example, in the sandbox's policy: %d", s)
	}
	if s := status("later.example"); s != http.StatusForbidden {
		t.Fatalf("later.example before it is allowed: %d, want 403 (never held for approval)", s)
	}
	if err := e.p.SetPolicy("sb", pol(2, policy.UnknownAsk, opaque("first.example"), opaque("later.example"))); err != nil {
		t.Fatal(err)
	}
	c, br, r := connect(t, addr, "later.example:"+strconv.Itoa(port))
	if r.StatusCode != http.StatusOK {
		t.Fatalf("later.example after the sandbox's policy added it: %d, want 200", r.StatusCode)
	}
	c.Write([]byte("ping"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(br, buf); err != nil {
		t.Fatalf("echo through the plugin's tunnel: %v", err)
	}
	e.waitEvent(t, "the plugin's connection audited under its identity", func(ev Event) bool {
		return ev.Sandbox == id && ev.Host == "later.example" && ev.Decision == "open" && ev.Rule == "sb:test-rule"
	})
	// A revision that drops it closes the plugin's tunnel too.
	if err := e.p.SetPolicy("sb", pol(3, policy.UnknownAsk, opaque("first.example"))); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, c)
	if s := status("later.example"); s != http.StatusForbidden {
		t.Fatalf("later.example after the sandbox's policy dropped it: %d, want 403", s)
	}
	e.p.RemoveSandbox("sb")
	if s := status("first.example"); s != http.StatusForbidden {
		t.Fatalf("first.example after the sandbox is gone: %d, want 403", s)
	}
}
