package egress

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/nemoclave/nemoclave/policy"
)

// heldConnect starts a CONNECT in the background and waits until its
// approval is pending.
func heldConnect(t *testing.T, e *env, addr, authority string, events <-chan ApprovalEvent) (Approval, <-chan *http.Response) {
	t.Helper()
	done := make(chan *http.Response, 1)
	go func() {
		_, _, resp := connect(t, addr, authority)
		done <- resp
	}()
	for ev := range events {
		if ev.Type == "pending" && ev.Approval.Host+":"+strconv.Itoa(ev.Approval.Port) == authority {
			return ev.Approval, done
		}
	}
	t.Fatal("watch channel closed")
	return Approval{}, nil
}

func TestApprovals_AnswersOnceSandboxPersist(t *testing.T) {
	t.Parallel()
	_, port := tlsUpstream(t, echoHandler, "a.example", "b.example", "c.example")
	var mu sync.Mutex
	var persisted []*policy.Policy
	e := newEnv(t, map[string]string{"a.example": "127.0.0.1", "b.example": "127.0.0.1", "c.example": "127.0.0.1"},
		func(c *Config) {
			c.OnPersist = func(_ context.Context, id string, p *policy.Policy) error {
				mu.Lock()
				defer mu.Unlock()
				persisted = append(persisted, p)
				return nil
			}
		})
	addr := e.serve(t, "sb", pol(4, policy.UnknownAsk, ep("api.example.com", 443)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := e.p.Approvals().Watch(ctx)
	ps := strconv.Itoa(port)

	// once: this request passes, the next one asks again.
	a, done := heldConnect(t, e, addr, "a.example:"+ps, events)
	if got := e.p.Approvals().List(); len(got) != 1 || got[0].ID != a.ID {
		t.Fatalf("List = %+v", got)
	}
	if err := e.p.Approvals().Answer(ctx, a.ID, AnswerOnce); err != nil {
		t.Fatal(err)
	}
	if r := <-done; r.StatusCode != 200 {
		t.Fatalf("once: %d", r.StatusCode)
	}
	a2, done2 := heldConnect(t, e, addr, "a.example:"+ps, events)
	if err := e.p.Approvals().Answer(ctx, a2.ID, AnswerDeny); err != nil {
		t.Fatal(err)
	}
	if r := <-done2; r.StatusCode != http.StatusForbidden {
		t.Fatalf("deny: %d", r.StatusCode)
	}

	// sandbox: later requests pass without asking.
	b, done := heldConnect(t, e, addr, "b.example:"+ps, events)
	if err := e.p.Approvals().Answer(ctx, b.ID, AnswerSandbox); err != nil {
		t.Fatal(err)
	}
	if r := <-done; r.StatusCode != 200 {
		t.Fatalf("sandbox: %d", r.StatusCode)
	}
	if _, _, r := connect(t, addr, "b.example:"+ps); r.StatusCode != 200 {
		t.Fatalf("sandbox grant not kept: %d", r.StatusCode)
	}

	// persist: a new revision, handed to the control plane.
	c, done := heldConnect(t, e, addr, "c.example:"+ps, events)
	if err := e.p.Approvals().Answer(ctx, c.ID, AnswerPersist); err != nil {
		t.Fatal(err)
	}
	if r := <-done; r.StatusCode != 200 {
		t.Fatalf("persist: %d", r.StatusCode)
	}
	mu.Lock()
	if len(persisted) != 1 || persisted[0].Revision != 5 || persisted[0].Lookup("c.example", port).Endpoint == nil {
		t.Fatalf("persisted %+v", persisted)
	}
	mu.Unlock()
	if p := e.p.Policy("sb"); p.Revision != 5 {
		t.Fatalf("revision in force %d, want 5", p.Revision)
	}
	if err := e.p.Approvals().Answer(ctx, c.ID, AnswerOnce); err == nil {
		t.Fatal("answering twice succeeded")
	}
	// The full exchange works through an approved tunnel.
	tc, err := tunnelTLS(t, addr, "c.example:"+ps, "c.example", upstreamPKI(t).pool)
	if err != nil {
		t.Fatal(err)
	}
	if r := roundTrip(t, tc, bufio.NewReader(tc), "GET /x HTTP/1.1\r\nHost: c.example\r\n\r\n"); body(t, r) != "GET /x" {
		t.Fatal("approved tunnel did not reach the upstream")
	}
	e.waitEvent(t, "approval audit", func(ev Event) bool { return ev.Kind == "approval" && ev.Decision == "persist" })
}

func TestApprovals_RateLimitedPerSandbox(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, func(c *Config) {
		c.MaxPendingPerSandbox = 2
		c.ApprovalTimeout = 20 * time.Second
	})
	addr := e.serve(t, "sb", pol(1, policy.UnknownAsk, ep("api.example.com", 443)))
	addr2 := e.serve(t, "other", pol(1, policy.UnknownAsk, ep("api.example.com", 443)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := e.p.Approvals().Watch(ctx)
	_, d1 := heldConnect(t, e, addr, "one.example:443", events)
	_, d2 := heldConnect(t, e, addr, "two.example:443", events)
	// Joining an already pending host does not take a slot.
	_, d2b := heldConnect(t, e, addr, "two.example:443", events)
	_, _, resp := connect(t, addr, "three.example:443")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body(t, resp), "waiting for approval") {
		t.Fatalf("third distinct host: %d, want immediate 403", resp.StatusCode)
	}
	// Another sandbox has its own quota.
	o, d3 := heldConnect(t, e, addr2, "three.example:443", events)
	for _, a := range e.p.Approvals().List() {
		if a.Host == "two.example" && a.Waiting != 2 {
			t.Errorf("two.example waiting = %d, want 2", a.Waiting)
		}
		e.p.Approvals().Answer(ctx, a.ID, AnswerDeny)
	}
	for _, d := range []<-chan *http.Response{d1, d2, d2b, d3} {
		if r := <-d; r.StatusCode != http.StatusForbidden {
			t.Fatalf("denied approval: %d", r.StatusCode)
		}
	}
	if o.Sandbox != "other" {
		t.Fatalf("approval sandbox %q", o.Sandbox)
	}
}

func TestHotReload_ClosesTunnelsNoLongerAllowed(t *testing.T) {
	t.Parallel()
	_, port := rawUpstream(t, true)
	e := newEnv(t, map[string]string{"keep.example": "127.0.0.1", "drop.example": "127.0.0.1"})
	opaque := func(h string) policy.Endpoint {
		x := ep(h, port)
		x.AllowOpaque = true
		return x
	}
	addr := e.serve(t, "sb", pol(1, policy.UnknownDeny, opaque("keep.example"), opaque("drop.example")))
	open := func(host string) (net.Conn, *bufio.Reader) {
		c, br, resp := connect(t, addr, host+":"+strconv.Itoa(port))
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", host, resp.StatusCode)
		}
		c.Write([]byte("ping"))
		buf := make([]byte, 4)
		if _, err := io.ReadFull(br, buf); err != nil {
			t.Fatalf("%s echo: %v", host, err)
		}
		return c, br
	}
	keep, keepBR := open("keep.example")
	drop, _ := open("drop.example")

	if err := e.p.SetPolicy("sb", pol(1, policy.UnknownDeny, opaque("keep.example"))); err == nil {
		t.Fatal("a revision that is not newer was accepted")
	}
	bad := pol(2, policy.UnknownDeny, ep("*", 443))
	if err := e.p.SetPolicy("sb", bad); err == nil {
		t.Fatal("an invalid policy was accepted")
	}
	if err := e.p.SetPolicy("sb", pol(2, policy.UnknownDeny, opaque("keep.example"))); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, drop)
	keep.Write([]byte("pong"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(keepBR, buf); err != nil || string(buf) != "pong" {
		t.Fatalf("allowed tunnel broken by reload: %q %v", buf, err)
	}
	if _, _, r := connect(t, addr, "drop.example:"+strconv.Itoa(port)); r.StatusCode != http.StatusForbidden {
		t.Fatalf("new connection to dropped host: %d", r.StatusCode)
	}
	revs := e.p.Revisions("sb")
	if len(revs) != 2 || revs[0].Revision != 1 || revs[1].Revision != 2 {
		t.Fatalf("revisions %+v", revs)
	}
	e.waitEvent(t, "tunnel closed by reload", func(ev Event) bool {
		return ev.Host == "drop.example" && ev.Decision == "closed" && strings.Contains(ev.Reason, "revision 2")
	})
}

func TestHotReload_InspectedTunnelJudgesEachRequest(t *testing.T) {
	t.Parallel()
	_, port := tlsUpstream(t, echoHandler, "api.example.com")
	e := newEnv(t, map[string]string{"api.example.com": "127.0.0.1"})
	insp := ep("api.example.com", port)
	insp.Inspect = true
	addr := e.serve(t, "sb", pol(1, policy.UnknownDeny, insp))
	ca, _ := e.p.CA("sb")
	hp := "api.example.com:" + strconv.Itoa(port)
	tc, err := tunnelTLS(t, addr, hp, "api.example.com", certPool(ca.CertPEM()))
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(tc)
	if r := roundTrip(t, tc, br, "GET /admin/x HTTP/1.1\r\nHost: "+hp+"\r\n\r\n"); r.StatusCode != 200 {
		t.Fatalf("before reload: %d", r.StatusCode)
	}
	insp.Deny = []policy.HTTPRule{{Paths: []string{"/admin/**"}}}
	if err := e.p.SetPolicy("sb", pol(2, policy.UnknownDeny, insp)); err != nil {
		t.Fatal(err)
	}
	if r := roundTrip(t, tc, br, "GET /admin/x HTTP/1.1\r\nHost: "+hp+"\r\n\r\n"); r.StatusCode != http.StatusForbidden {
		t.Fatalf("after reload, same keep-alive tunnel: %d, want 403", r.StatusCode)
	}
	if r := roundTrip(t, tc, br, "GET /public HTTP/1.1\r\nHost: "+hp+"\r\n\r\n"); r.StatusCode != 200 {
		t.Fatalf("after reload, allowed path: %d", r.StatusCode)
	}
}

func TestAudit_RotatesBySize(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, func(c *Config) { c.AuditMaxBytes = 2048; c.AuditKeep = 2 })
	addr := e.serve(t, "sb", pol(1, policy.UnknownDeny, ep("api.example.com", 443)))
	for i := 0; i < 40; i++ {
		connect(t, addr, "denied"+strconv.Itoa(i)+".example:443")
	}
	entries, err := os.ReadDir(e.auditDir)
	if err != nil {
		t.Fatal(err)
	}
	var rotated int
	for _, en := range entries {
		info, _ := en.Info()
		if strings.HasPrefix(en.Name(), "egress-") {
			rotated++
		}
		if info.Size() > 2048 {
			t.Errorf("%s is %d bytes, over the cap", en.Name(), info.Size())
		}
	}
	if rotated != 2 {
		t.Fatalf("%d rotated files, want AuditKeep=2 (%v)", rotated, entries)
	}
	last := e.events(t)
	if len(last) == 0 || !strings.HasPrefix(last[len(last)-1].Host, "denied39") {
		t.Fatalf("newest event not in the live file: %+v", last)
	}
}

func TestMetrics_CountDecisionsOnGivenRegistry(t *testing.T) {
	t.Parallel()
	_, port := plainUpstream(t, echoHandler)
	e := newEnv(t, map[string]string{"api.example.com": "127.0.0.1"})
	addr := e.serve(t, "sb", pol(1, policy.UnknownDeny, ep("api.example.com", port)))
	hp := "api.example.com:" + strconv.Itoa(port)
	plainRequest(t, addr, "GET http://"+hp+"/ HTTP/1.1\r\nHost: "+hp+"\r\n\r\n")
	connect(t, addr, "no.example:443")
	e.waitEvent(t, "allowed request", func(ev Event) bool { return ev.Decision == "allow" })
	if got := testutil.ToFloat64(e.p.metrics.decisions.WithLabelValues("sb", "http", "allow")); got != 1 {
		t.Errorf("allow counter %v", got)
	}
	if got := testutil.ToFloat64(e.p.metrics.decisions.WithLabelValues("sb", "connect", "deny")); got != 1 {
		t.Errorf("deny counter %v", got)
	}
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, n := range []string{"nemoclave_egress_decisions_total", "nemoclave_egress_bytes_total", "nemoclave_egress_dns_seconds"} {
		if !names[n] {
			t.Errorf("metric %s not on the registry (have %v)", n, names)
		}
	}
	if _, err := New(Config{AuditDir: t.TempDir(), Registry: e.reg}); err == nil {
		t.Error("registering twice on one registry should fail")
	}
}

func TestUpstreamProxy_ChainsConnect(t *testing.T) {
	t.Parallel()
	_, port := tlsUpstream(t, echoHandler, "api.example.com")
	hosts := map[string]string{"api.example.com": "127.0.0.1"}
	// The "corporate" proxy is a second gateway that allows the host.
	corp := newEnv(t, hosts)
	corpAddr := corp.serve(t, "corp", pol(1, policy.UnknownDeny, ep("api.example.com", port)))
	e := newEnv(t, hosts, func(c *Config) { c.UpstreamProxy = &url.URL{Scheme: "http", Host: corpAddr} })
	addr := e.serve(t, "sb", pol(1, policy.UnknownDeny, ep("api.example.com", port)))
	hp := "api.example.com:" + strconv.Itoa(port)
	tc, err := tunnelTLS(t, addr, hp, "api.example.com", upstreamPKI(t).pool)
	if err != nil {
		t.Fatal(err)
	}
	if r := roundTrip(t, tc, bufio.NewReader(tc), "GET /chained HTTP/1.1\r\nHost: "+hp+"\r\n\r\n"); body(t, r) != "GET /chained" {
		t.Fatal("chained request failed")
	}
	tc.Close()
	corp.waitEvent(t, "corporate proxy saw the CONNECT", func(ev Event) bool { return ev.Host == "api.example.com" && ev.Sandbox == "corp" })
	if _, err := New(Config{AuditDir: t.TempDir(), UpstreamProxy: &url.URL{Scheme: "socks5", Host: "x:1"}}); err == nil {
		t.Error("socks5 upstream accepted")
	}
}

func TestCA_TrustBundleAndEnv(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ca, err := e.p.CA("sb")
	if err != nil {
		t.Fatal(err)
	}
	other, _ := e.p.CA("other")
	if string(other.CertPEM()) == string(ca.CertPEM()) {
		t.Fatal("two sandboxes share a CA")
	}
	env := TrustEnv("/etc/nemoclave/ca.pem")
	if len(env) != 6 || env[0] != "SSL_CERT_FILE=/etc/nemoclave/ca.pem" {
		t.Fatalf("TrustEnv = %v", env)
	}
	bundle, err := e.p.TrustBundle("sb")
	if err != nil {
		t.Skipf("no system roots on this machine: %v", err)
	}
	pool := certPool(bundle)
	leaf, err := ca.leaf("api.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Leaf.Verify(x509VerifyOpts(pool, "api.example.com")); err != nil {
		t.Fatalf("leaf does not verify against the bundle: %v", err)
	}
	if !strings.Contains(string(bundle), string(ca.CertPEM())) || len(bundle) <= len(ca.CertPEM()) {
		t.Fatal("bundle lacks the CA or the system roots")
	}
	_ = tls.VersionTLS13
}

func TestRemoveSandbox_DeniesOnItsListener(t *testing.T) {
	t.Parallel()
	_, port := rawUpstream(t, true)
	e := newEnv(t, map[string]string{"api.example.com": "127.0.0.1"})
	x := ep("api.example.com", port)
	x.AllowOpaque = true
	addr := e.serve(t, "sb", pol(1, policy.UnknownDeny, x))
	c, br, resp := connect(t, addr, "api.example.com:"+strconv.Itoa(port))
	if resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
	c.Write([]byte("hi"))
	if _, err := io.ReadFull(br, make([]byte, 2)); err != nil {
		t.Fatal(err)
	}
	e.p.RemoveSandbox("sb")
	expectClosed(t, c)
	if _, _, r := connect(t, addr, "api.example.com:"+strconv.Itoa(port)); r.StatusCode != http.StatusForbidden {
		t.Fatalf("listener of a removed sandbox: %d, want 403", r.StatusCode)
	}
}

func TestConnectionCapPerSandbox(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, func(c *Config) { c.MaxConnsPerSandbox = 2 })
	addr := e.serve(t, "sb", pol(1, policy.UnknownDeny, ep("api.example.com", 443)))
	other := e.serve(t, "other", pol(1, policy.UnknownDeny, ep("api.example.com", 443)))
	var held []net.Conn
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	// The two idle connections are counted once the gateway accepted them.
	deadline := time.Now().Add(time.Minute)
	for {
		sb, _ := e.p.lookupSandbox("sb")
		if sb.conns.Load() == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if r := plainRequest(t, addr, "GET http://x.example/ HTTP/1.1\r\nHost: x.example\r\n\r\n"); r.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third connection: %d, want 503", r.StatusCode)
	}
	if r := plainRequest(t, other, "GET http://x.example/ HTTP/1.1\r\nHost: x.example\r\n\r\n"); r.StatusCode != http.StatusForbidden {
		t.Fatalf("another sandbox is not affected: %d, want 403", r.StatusCode)
	}
	held[0].Close()
	deadline = time.Now().Add(time.Minute)
	for {
		r := plainRequest(t, addr, "GET http://x.example/ HTTP/1.1\r\nHost: x.example\r\n\r\n")
		if r.StatusCode == http.StatusForbidden {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot not released: %d", r.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPlainHTTP_RulesApplyWithoutInspection(t *testing.T) {
	t.Parallel()
	_, port := plainUpstream(t, echoHandler)
	e := newEnv(t, map[string]string{"plain.example": "127.0.0.1"})
	x := ep("plain.example", port)
	x.Inspect = true // allow/deny rules need inspect = true in the policy; plain HTTP is visible anyway
	x.Allow = []policy.HTTPRule{{Methods: []string{"GET"}, Paths: []string{"/pub/**"}}}
	addr := e.serve(t, "sb", pol(1, policy.UnknownDeny, x))
	hp := "plain.example:" + strconv.Itoa(port)
	for target, want := range map[string]int{"/pub/a": 200, "/pub/../priv": 403, "/priv": 403, "/pub/%2e%2e/priv": 403} {
		r := plainRequest(t, addr, "GET http://"+hp+target+" HTTP/1.1\r\nHost: "+hp+"\r\n\r\n")
		if r.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", target, r.StatusCode, want)
		}
	}
	if r := plainRequest(t, addr, "DELETE http://"+hp+"/pub/a HTTP/1.1\r\nHost: "+hp+"\r\n\r\n"); r.StatusCode != 403 {
		t.Errorf("DELETE: %d, want 403", r.StatusCode)
	}
}

func TestInspected_ExpectContinueAndBody(t *testing.T) {
	t.Parallel()
	_, port := tlsUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write([]byte(r.Method + " " + string(b)))
	}), "api.example.com")
	e := newEnv(t, map[string]string{"api.example.com": "127.0.0.1"})
	x := ep("api.example.com", port)
	x.Inspect = true
	addr := e.serve(t, "sb", pol(1, policy.UnknownDeny, x))
	ca, _ := e.p.CA("sb")
	hp := "api.example.com:" + strconv.Itoa(port)
	tc, err := tunnelTLS(t, addr, hp, "api.example.com", certPool(ca.CertPEM()))
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(tc)
	io.WriteString(tc, "POST /up HTTP/1.1\r\nHost: "+hp+"\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	interim, err := http.ReadResponse(br, nil)
	if err != nil || interim.StatusCode != http.StatusContinue {
		t.Fatalf("interim response: %v %v", interim, err)
	}
	io.WriteString(tc, "hello")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b := body(t, resp); resp.StatusCode != 200 || b != "POST hello" {
		t.Fatalf("final: %d %q", resp.StatusCode, b)
	}
	// Chunked upload on the same keep-alive tunnel.
	r := roundTrip(t, tc, br, "POST /up HTTP/1.1\r\nHost: "+hp+"\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
	if b := body(t, r); b != "POST abc" {
		t.Fatalf("chunked: %q", b)
	}
	tc.Close()
	ev := e.waitEvent(t, "request audit with bytes", func(ev Event) bool { return ev.Kind == "inspected" && ev.Method == "POST" && ev.BytesUp == 5 })
	if ev.BytesDn == 0 || ev.Status != 200 || ev.IP != "127.0.0.1" || ev.Path != "/up" {
		t.Fatalf("audit %+v", ev)
	}
}
