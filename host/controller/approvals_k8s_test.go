//go:build kubernetes

package controller

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// unknownTarget is a public address (TEST-NET-1) the test blueprint does
// not name: under unknown_hosts = "ask" a request to it is held for an
// operator. Once approved the gateway dials it, which fails here (nothing
// answers there): a 502 or 504, never the 403 of a refusal.
const unknownTarget = "192.0.2.1"

// plainRequest sends an absolute-form HTTP request for target through
// replica r's egress listener (the Front, with the pod's token) and
// returns the gateway's status and body.
func (p *fakePod) plainRequest(r *replica, target string) (int, string, error) {
	c, err := net.DialTimeout("tcp", r.front, 5*time.Second)
	if err != nil {
		return 0, "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Minute))
	host := strings.SplitN(strings.TrimPrefix(target, "http://"), "/", 2)[0]
	if _, err := fmt.Fprintf(c, "NEMOCLAVE-SANDBOX/1 egress %s\nGET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", p.token, target, host); err != nil {
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

// cli runs the nemoclave CLI against replica r's daemon (its home), as an
// operator with a shell in that replica would.
func (r *replica) cli(t *testing.T, args ...string) string {
	t.Helper()
	bin, _ := binary(t)
	cmd := exec.Command(bin, append([]string{"--home", r.home}, args...)...)
	cmd.Env = append(os.Environ(), "NEMOCLAVE_HOME="+r.home)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("nemoclave %s on %s: %v\n%s", strings.Join(args, " "), r.identity(), err, out)
	}
	return string(out)
}

// pendingID waits until `nemoclave approvals list` on r shows one pending
// request for host and returns its id.
func (r *replica) pendingID(t *testing.T, host string) string {
	t.Helper()
	var id string
	eventually(t, "approvals list on "+r.identity()+" to show the request for "+host, func() bool {
		var list []map[string]any
		out := r.cli(t, "approvals", "list", "-o", "json")
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			t.Fatalf("approvals list -o json: %v\n%s", err, out)
		}
		n := 0
		for _, a := range list {
			if a["host"] == host {
				n++
				id, _ = a["id"].(string)
			}
		}
		if n > 1 {
			t.Fatalf("the request for %s is listed %d times: %s", host, n, out)
		}
		return n == 1 && id != ""
	})
	return id
}

// Two replicas on one PostgreSQL state serve a sandbox whose policy asks
// the operator about unknown hosts. The pod's request to an unknown host
// reaches replica A and is held there; the operator's CLI talks to
// replica B, lists it and approves it, and A lets it through. The other
// way round, B holds one and a deny given on A refuses it.
func TestHA_ApprovalsAnsweredOnAnyReplica(t *testing.T) {
	stateURL := sharedPostgres(t)
	cl := testCluster(t)
	ns := cl.namespace(t)
	ctx := context.Background()
	a := cl.startReplica(t, ns, "", "--state-url", stateURL)
	b := cl.startReplica(t, ns, "", "--state-url", stateURL)
	cm := blueprintConfigMap(t, ns, "ask-blueprint", "crd-ask")
	cm.Data["blueprint.hcl"] = strings.Replace(cm.Data["blueprint.hcl"], `unknown_hosts = "deny"`, `unknown_hosts = "ask"`, 1)
	if err := cl.c.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	if err := cl.c.Create(ctx, &AgentEnvironment{ObjectMeta: metav1.ObjectMeta{Name: "ask", Namespace: ns},
		Spec: AgentEnvironmentSpec{ConfigMapRef: &ConfigMapBlueprint{Name: "ask-blueprint"}}}); err != nil {
		t.Fatal(err)
	}
	cl.waitReady(t, ns, "ask")
	pod := cl.pod(t, ns, "crd-ask")
	if pod == nil {
		t.Fatal("no sandbox pod")
	}
	agent := cl.fakePod(t, pod)
	agent.answers(t, a, "(replica a)")
	agent.answers(t, b, "(replica b)")

	type result struct {
		code int
		body string
		err  error
	}
	hold := func(r *replica, target string) chan result {
		ch := make(chan result, 1)
		go func() { c, body, err := agent.plainRequest(r, target); ch <- result{c, body, err} }()
		return ch
	}

	res := hold(a, "http://"+unknownTarget+"/report")
	id := b.pendingID(t, unknownTarget)
	if out := b.cli(t, "approvals", "approve", id); !strings.Contains(out, "approved") {
		t.Fatalf("approve on B: %s", out)
	}
	select {
	case r := <-res:
		if r.err != nil || r.code == http.StatusForbidden || r.code == http.StatusOK {
			t.Fatalf("the request held on A after B approved it: %d %q %v, want the gateway's dial failure (502/504)", r.code, r.body, r.err)
		}
		t.Logf("approved on B, A let the request through: %d", r.code)
	case <-time.After(2 * time.Minute):
		t.Fatal("A did not let the request through after B approved it")
	}

	res = hold(b, "http://"+unknownTarget+":8080/other")
	id = a.pendingID(t, unknownTarget)
	a.cli(t, "approvals", "deny", id)
	if r := <-res; r.code != http.StatusForbidden || !strings.Contains(r.body, "answered deny") {
		t.Fatalf("the request held on B after A denied it: %d %q %v", r.code, r.body, r.err)
	}

	// An answer the holder cannot apply fully is reported by the CLI that
	// gave it: the state refuses A's "persist" revision (a constraint
	// added here), so `approvals approve --scope persist` on B fails with
	// A's reason and what to do, while A lets the request through.
	admin, err := sql.Open("pgx", stateURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec(`ALTER TABLE policy_revisions ADD CONSTRAINT no_approvals CHECK (source <> 'approval')`); err != nil {
		t.Fatal(err)
	}
	res = hold(a, "http://"+unknownTarget+":8443/persist")
	id = b.pendingID(t, unknownTarget)
	bin, _ := binary(t)
	cmd := exec.Command(bin, "--home", b.home, "approvals", "approve", "--scope", "persist", id)
	cmd.Env = append(os.Environ(), "NEMOCLAVE_HOME="+b.home)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("approve --scope persist on B succeeded although A could not store the revision:\n%s", out)
	}
	t.Logf("approve --scope persist on B: %v\n%s", err, out)
	for _, want := range []string{id, "could not store the new policy revision", "--scope persist"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("B's CLI output does not say %q:\n%s", want, out)
		}
	}
	select {
	case r := <-res:
		if r.err != nil || r.code == http.StatusForbidden || r.code == http.StatusOK {
			t.Fatalf("the request held on A after the persist answer: %d %q %v, want the gateway's dial failure (502/504)", r.code, r.body, r.err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("A did not let the request through after the persist answer")
	}
}
