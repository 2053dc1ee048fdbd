package egress

import (
	"bufio"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/nemoclave/nemoclave/policy"
)

// TestAbuse_R7_AuditFailsClosed: when the audit log cannot be written
// (the disk is full: the log is /dev/full here), an allowed CONNECT is
// refused with a message for the operator instead of running unrecorded.
func TestAbuse_R7_AuditFailsClosed(t *testing.T) {
	up, port := rawUpstream(t, true)
	_ = up
	e := newEnv(t, map[string]string{"api.example.com": "127.0.0.1"}, func(c *Config) {
		if err := os.MkdirAll(c.AuditDir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("/dev/full", filepath.Join(c.AuditDir, auditName)); err != nil {
			t.Fatal(err)
		}
	})
	addr := e.serve(t, "sb", pol(1, "deny", ep("api.example.com", port)))
	_, _, resp := connect(t, addr, "api.example.com:"+strconv.Itoa(port))
	b := body(t, resp)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(b, "cannot write this tunnel's audit record") {
		t.Fatalf("CONNECT with an unwritable audit log: %d %s", resp.StatusCode, b)
	}
}

// TestAbuse_R7_TornTailRepairedOnReopen: a torn last line (a crash or a
// full disk mid-write) is cut on reopen, so the next line stands alone;
// an allowed tunnel leaves an "open" line before any byte goes upstream.
func TestAbuse_R7_TornTailRepairedOnReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	whole := `{"sandbox":"sb","kind":"connect","decision":"deny","revision":1,"bytes_up":0,"bytes_down":0,"duration_ms":0}` + "\n"
	if err := os.WriteFile(filepath.Join(dir, auditName), []byte(whole+`{"sandbox":"sb","kin`), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := openAudit(dir, 1<<20, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Write(Event{Sandbox: "sb", Kind: "connect", Decision: "open"}); err != nil {
		t.Fatal(err)
	}
	a.Close()
	b, _ := os.ReadFile(filepath.Join(dir, auditName))
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 2 || lines[0]+"\n" != whole || !strings.HasPrefix(lines[1], `{"time"`) {
		t.Fatalf("after reopen:\n%s", b)
	}

	up, port := rawUpstream(t, true)
	_ = up
	e := newEnv(t, map[string]string{"api.example.com": "127.0.0.1"})
	addr := e.serve(t, "sb", pol(1, "deny", ep("api.example.com", port)))
	c, _, resp := connect(t, addr, "api.example.com:"+strconv.Itoa(port))
	defer c.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT: %d", resp.StatusCode)
	}
	// The tunnel is still open (nothing sent yet): its open record exists.
	e.waitEvent(t, "open", func(ev Event) bool { return ev.Decision == "open" && ev.Host == "api.example.com" })
}

// diskFull makes every further audit write fail as on a full disk: the
// log's file becomes /dev/full (ENOSPC on write).
func diskFull(t *testing.T, p *Proxy) {
	t.Helper()
	f, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full here: %v", err)
	}
	p.audit.mu.Lock()
	old := p.audit.f
	p.audit.f = f
	p.audit.mu.Unlock()
	old.Close()
}

// TestAbuse_R7_PlainAndInspectedFailClosed: plain-HTTP requests and each
// request inside an inspected tunnel are refused (503, saying why) when
// their audit record cannot be written, instead of reaching the upstream
// unrecorded; the upstream sees none of them.
func TestAbuse_R7_PlainAndInspectedFailClosed(t *testing.T) {
	var hits atomic.Int64
	counting := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		echoHandler.ServeHTTP(w, r)
	})
	_, plainPort := plainUpstream(t, counting)
	_, tlsPort := tlsUpstream(t, counting, "api.example.com")
	e := newEnv(t, map[string]string{"plain.example": "127.0.0.1", "api.example.com": "127.0.0.1"})
	insp := ep("api.example.com", tlsPort)
	insp.Inspect = true
	addr := e.serve(t, "sb", pol(1, policy.UnknownDeny, ep("plain.example", plainPort), insp))
	hp := "plain.example:" + strconv.Itoa(plainPort)
	if r := plainRequest(t, addr, "GET http://"+hp+"/ok HTTP/1.1\r\nHost: "+hp+"\r\n\r\n"); r.StatusCode != 200 {
		t.Fatalf("plain request before the disk filled: %d", r.StatusCode)
	}
	// An inspected tunnel opened while the log still worked.
	ca, _ := e.p.CA("sb")
	ihp := "api.example.com:" + strconv.Itoa(tlsPort)
	tc, err := tunnelTLS(t, addr, ihp, "api.example.com", certPool(ca.CertPEM()))
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	br := bufio.NewReader(tc)
	if r := roundTrip(t, tc, br, "GET /first HTTP/1.1\r\nHost: "+ihp+"\r\n\r\n"); r.StatusCode != 200 {
		t.Fatalf("inspected request before the disk filled: %d", r.StatusCode)
	}
	before := hits.Load()

	diskFull(t, e.p)
	r := plainRequest(t, addr, "GET http://"+hp+"/after HTTP/1.1\r\nHost: "+hp+"\r\n\r\n")
	if b := body(t, r); r.StatusCode != http.StatusServiceUnavailable || !strings.Contains(b, "cannot write this request's audit record") {
		t.Errorf("plain request with an unwritable audit log: %d %s", r.StatusCode, b)
	}
	r = roundTrip(t, tc, br, "GET /second HTTP/1.1\r\nHost: "+ihp+"\r\n\r\n")
	if b := body(t, r); r.StatusCode != http.StatusServiceUnavailable || !strings.Contains(b, "cannot write this request's audit record") {
		t.Errorf("inspected request with an unwritable audit log: %d %s", r.StatusCode, b)
	}
	if n := hits.Load(); n != before {
		t.Errorf("the upstream received %d requests that have no audit record", n-before)
	}
}

// TestAbuse_R9_QueryStringsAudited: plain and inspected requests leave
// their query string in the audit line, credential-named values redacted.
func TestAbuse_R9_QueryStringsAudited(t *testing.T) {
	_, plainPort := plainUpstream(t, echoHandler)
	e := newEnv(t, map[string]string{"plain.example": "127.0.0.1"})
	addr := e.serve(t, "sb", pol(1, policy.UnknownDeny, ep("plain.example", plainPort)))
	hp := "plain.example:" + strconv.Itoa(plainPort)
	if r := plainRequest(t, addr, "GET http://"+hp+"/search?q=exfil-marker&sig=s3cr3tsig HTTP/1.1\r\nHost: "+hp+"\r\n\r\n"); r.StatusCode != 200 {
		t.Fatalf("plain request: %d", r.StatusCode)
	}
	ev := e.waitEvent(t, "allowed request with its query", func(ev Event) bool {
		return ev.Decision == "allow" && ev.Path == "/search"
	})
	if ev.Query != "q=exfil-marker&sig=[REDACTED]" {
		t.Errorf("audited query %q", ev.Query)
	}
	// A refused request keeps its query too.
	if r := plainRequest(t, addr, "GET http://other.example/x?token=abc&id=7 HTTP/1.1\r\nHost: other.example\r\n\r\n"); r.StatusCode != http.StatusForbidden {
		t.Fatalf("unlisted host: %d", r.StatusCode)
	}
	e.waitEvent(t, "refused request with its query", func(ev Event) bool {
		return ev.Decision == "deny" && ev.Host == "other.example" && ev.Query == "token=[REDACTED]&id=7"
	})
}

// TestAbuse_R9_ApprovalIDAndOperatorAudited: the held request and its
// answer carry the approval id, and the answer the operator who gave it.
func TestAbuse_R9_ApprovalIDAndOperatorAudited(t *testing.T) {
	_, port := tlsUpstream(t, echoHandler, "a.example")
	e := newEnv(t, map[string]string{"a.example": "127.0.0.1"})
	addr := e.serve(t, "sb", pol(1, policy.UnknownAsk, ep("api.example.com", 443)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := e.p.Approvals().Watch(ctx)
	a, done := heldConnect(t, e, addr, "a.example:"+strconv.Itoa(port), events)
	if err := e.p.Approvals().AnswerAs(ctx, a.ID, AnswerDeny, "local:1000"); err != nil {
		t.Fatal(err)
	}
	if r := <-done; r.StatusCode != http.StatusForbidden {
		t.Fatalf("denied request: %d", r.StatusCode)
	}
	e.waitEvent(t, "held request with its id", func(ev Event) bool {
		return ev.Kind == "approval" && ev.Decision == "ask" && ev.Approval == a.ID
	})
	e.waitEvent(t, "answer with id and operator", func(ev Event) bool {
		return ev.Kind == "approval" && ev.Decision == "deny" && ev.Approval == a.ID && ev.Operator == "local:1000"
	})
}
