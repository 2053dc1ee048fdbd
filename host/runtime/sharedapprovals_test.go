package runtime

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/policy"
	"github.com/nemoclave/nemoclave/sandbox"
)

// postgresState creates a fresh database on NEMOCLAVE_TEST_POSTGRES_URL's
// server and returns its URL; it skips without the variable.
func postgresState(t testing.TB, prefix string) string {
	t.Helper()
	base := os.Getenv("NEMOCLAVE_TEST_POSTGRES_URL")
	if base == "" {
		t.Skip("NEMOCLAVE_TEST_POSTGRES_URL is unset: state shared between replicas not tested (source scripts/test-postgres.sh)")
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	name := fmt.Sprintf("%s_%d_%d", prefix, os.Getpid(), time.Now().UnixNano())
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if a, err := sql.Open("pgx", base); err == nil {
			_, _ = a.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
			a.Close()
		}
	})
	u, _ := url.Parse(base)
	u.Path = "/" + name
	return u.String()
}

// throughEgress sends one plain HTTP request to target through the egress
// listener at addr and returns the status and body.
func throughEgress(addr, target string) (int, string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	u, err := url.Parse(target)
	if err != nil {
		return 0, "", err
	}
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", target, u.Host); err != nil {
		return 0, "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// Two replicas on one PostgreSQL state serve one sandbox. A request to an
// unknown host made through replica A's egress is held there; an operator
// talking to replica B sees it in `approvals list` (once, on either
// replica) and answers it on B; A lets the held request through. The
// answer "sandbox" then holds on B too (the grant is shared), and a
// request B holds can be denied on A.
func TestSharedApprovals_AnsweredOnAnotherReplica(t *testing.T) {
	stateURL := postgresState(t, "rt_approvals")
	ctx := context.Background()
	// The gateway host's own addresses (127.0.0.1) are never reachable:
	// the upstream listens on another loopback address.
	upl, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no 127.0.0.2 to serve the upstream on: %v", err)
	}
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "upstream saw ", r.URL.Path) }))
	up.Listener.Close()
	up.Listener = upl
	up.Start()
	defer up.Close()
	port := upl.Addr().(*net.TCPAddr).Port
	lo := netip.MustParseAddr("127.0.0.2")
	replica := func() (*Runtime, string) {
		r, err := New(ctx, Options{Home: t.TempDir(), StateURL: stateURL, Executable: "/bin/true", PluginBinDir: pluginDir,
			Drivers:        map[string]sandbox.Driver{"local": newFakeDriver(0)},
			EgressResolver: nameResolver{"new.test": lo, "other.test": lo}, UnsafeAllowLoopback: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close(context.Background()) })
		pol := &policy.Policy{Name: "shared", Revision: 1, UnknownHosts: policy.UnknownAsk,
			Filesystem: policy.Filesystem{ReadOnly: []string{"/usr"}},
			Network:    []policy.NetworkRule{{Name: "known", Source: "blueprint", Endpoints: []policy.Endpoint{{Host: "known.test", Ports: []int{443}}}}}}
		return r, serveEgress(t, r, pol)
	}
	a, egressA := replica()
	b, egressB := replica()

	type result struct {
		code int
		body string
		err  error
	}
	held := func(addr, target string) chan result {
		ch := make(chan result, 1)
		go func() { c, body, err := throughEgress(addr, target); ch <- result{c, body, err} }()
		return ch
	}
	// listedOn is the id of the one approval for host r lists, or "".
	listedOn := func(r *Runtime, host string) string {
		t.Helper()
		list, err := r.ListApprovals(ctx, "sb")
		if err != nil {
			t.Fatal(err)
		}
		n, id := 0, ""
		for _, ap := range list {
			if ap.Host == host {
				n, id = n+1, ap.Id
			}
		}
		if n > 1 {
			t.Fatalf("approval for %s listed %d times: %v", host, n, list)
		}
		return id
	}
	pendingOn := func(r *Runtime, host string) string {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			if id := listedOn(r, host); id != "" {
				return id
			}
			if time.Now().After(deadline) {
				t.Fatalf("no pending approval for %s listed on a replica", host)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	target := fmt.Sprintf("http://new.test:%d/report", port)
	res := held(egressA, target)
	id := pendingOn(b, "new.test") // held on A, listed on B
	if idA := pendingOn(a, "new.test"); idA != id {
		t.Fatalf("replicas list different ids for one held request: %s on A, %s on B", idA, id)
	}
	if _, err := b.AnswerApproval(ctx, id, true, "sandbox"); err != nil {
		t.Fatalf("answering on B a request A holds: %v", err)
	}
	select {
	case r := <-res:
		if r.err != nil || r.code != http.StatusOK || r.body != "upstream saw /report" {
			t.Fatalf("the request held on A after B's answer: %d %q %v", r.code, r.body, r.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("A did not let the request through after B's answer")
	}
	if list, _ := b.ListApprovals(ctx, ""); len(list) != 0 {
		t.Fatalf("answered approval still listed on B: %v", list)
	}
	// The lifetime grant holds on B as well, without asking. Until the
	// grant reaches B's egress, B holds the request for approval: deny
	// that one and try again. (Whether it is held is read from B's list,
	// not guessed from how long the request takes on a loaded machine.)
	deadline := time.Now().Add(30 * time.Second)
	for granted := false; !granted; {
		done := make(chan result, 1)
		go func() { c, body, err := throughEgress(egressB, target); done <- result{c, body, err} }()
		for waiting := true; waiting; {
			select {
			case r := <-done:
				if r.code != http.StatusOK {
					t.Fatalf("B after the sandbox grant: %d %q %v", r.code, r.body, r.err)
				}
				granted, waiting = true, false
			case <-time.After(100 * time.Millisecond):
				id := listedOn(b, "new.test")
				if id == "" {
					continue
				}
				if time.Now().After(deadline) {
					t.Fatal("the sandbox grant made on B never applied to B's egress")
				}
				_, _ = b.AnswerApproval(ctx, id, false, "")
				<-done
				waiting = false
			}
		}
	}

	// A request held on B, denied by an operator on A.
	res = held(egressB, fmt.Sprintf("http://other.test:%d/x", port))
	id = pendingOn(a, "other.test")
	if _, err := a.AnswerApproval(ctx, id, false, ""); err != nil {
		t.Fatalf("denying on A a request B holds: %v", err)
	}
	if r := <-res; r.code != http.StatusForbidden {
		t.Fatalf("the request held on B after A's deny: %d %q %v", r.code, r.body, r.err)
	}
	// Answering it again says it is gone.
	if _, err := a.AnswerApproval(ctx, id, true, "once"); err == nil || !strings.Contains(err.Error(), "no pending approval") {
		t.Fatalf("answering a resolved approval: %v", err)
	}
}

// serveEgress gives sandbox "sb" the policy pol on r's egress proxy and
// serves it on a loopback port until the test ends; it returns the address.
func serveEgress(t *testing.T, r *Runtime, pol *policy.Policy) string {
	t.Helper()
	if err := r.egress.SetPolicy("sb", pol); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go r.egress.Serve(ctx, ln, "sb")
	t.Cleanup(cancel)
	return ln.Addr().String()
}
