//go:build kubernetes

package controller

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// inspectedTarget is the inspected endpoint of the test blueprint: a
// literal private address (allow_private), so the CONNECT is vetted
// without DNS, and the gateway answers the denied path itself, without
// ever dialling it.
const inspectedTarget = "10.255.255.1"

// inspectedBlueprint is testBlueprint with an inspected endpoint that
// allows only GET /ok/**.
func inspectedBlueprint(t *testing.T, ns, name, sandbox string) *corev1.ConfigMap {
	cm := blueprintConfigMap(t, ns, name, sandbox)
	cm.Data["blueprint.hcl"] = strings.Replace(cm.Data["blueprint.hcl"], `policy "crd" {
  unknown_hosts = "deny"
}`, `policy "crd" {
  unknown_hosts = "deny"
  network "inhouse" {
    endpoint {
      host          = "`+inspectedTarget+`"
      inspect       = true
      allow_private = true
      allow {
        methods = ["GET"]
        paths   = ["/ok/**"]
      }
    }
  }
}`, 1)
	if !strings.Contains(cm.Data["blueprint.hcl"], inspectedTarget) {
		t.Fatal("the test blueprint's policy block changed; update inspectedBlueprint")
	}
	return cm
}

// sharedPostgres creates a database for the replicas' shared state on
// NEMOCLAVE_TEST_POSTGRES_URL's server; it skips without it.
func sharedPostgres(t *testing.T) string {
	t.Helper()
	base := os.Getenv("NEMOCLAVE_TEST_POSTGRES_URL")
	if base == "" {
		t.Skip("NEMOCLAVE_TEST_POSTGRES_URL is unset: replicas sharing PostgreSQL state not tested (make test-k8s starts it as root; or source scripts/test-postgres.sh)")
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	name := fmt.Sprintf("ha_state_%d_%d", os.Getpid(), time.Now().UnixNano())
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(base)
	u.Path = "/" + name
	return u.String()
}

// inspected makes the sandbox's request through replica r's egress
// listener (the Front, with the pod's token): CONNECT to the inspected
// endpoint, a TLS handshake that trusts only the bundle the pod was given,
// then GET path. It returns the gateway's status, or the handshake error.
func (p *fakePod) inspected(r *replica, bundle *x509.CertPool, path string) (int, error) {
	c, err := net.DialTimeout("tcp", r.front, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	target := inspectedTarget + ":443"
	if _, err := fmt.Fprintf(c, "NEMOCLAVE-SANDBOX/1 egress %s\nCONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", p.token, target, target); err != nil {
		return 0, err
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		return 0, fmt.Errorf("CONNECT: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return 0, fmt.Errorf("CONNECT: %d %s", resp.StatusCode, b)
	}
	tc := tls.Client(c, &tls.Config{ServerName: inspectedTarget, RootCAs: bundle, NextProtos: []string{"http/1.1"}})
	if err := tc.Handshake(); err != nil {
		return 0, fmt.Errorf("TLS with the gateway: %w", err)
	}
	if _, err := fmt.Fprintf(tc, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, target); err != nil {
		return 0, err
	}
	resp, err = http.ReadResponse(bufio.NewReader(tc), nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// Two replicas on one PostgreSQL state serve a sandbox whose policy
// inspects an endpoint. The pod trusts the CA bundle in its ConfigMap,
// made when the leader created it; every replica terminates the pod's
// inspected TLS with a certificate that verifies against it and judges
// the request (403 for a path the policy does not allow), and so does a
// replica after a restart. Before the CA was stored, only the creating
// replica's certificate verified.
func TestHA_InspectedEgressOnEveryReplica(t *testing.T) {
	stateURL := sharedPostgres(t)
	cl := testCluster(t)
	ns := cl.namespace(t)
	ctx := context.Background()
	a := cl.startReplica(t, ns, "", "--state-url", stateURL)
	b := cl.startReplica(t, ns, "", "--state-url", stateURL)
	if err := cl.c.Create(ctx, inspectedBlueprint(t, ns, "inspect-blueprint", "crd-insp")); err != nil {
		t.Fatal(err)
	}
	if err := cl.c.Create(ctx, &AgentEnvironment{ObjectMeta: metav1.ObjectMeta{Name: "insp", Namespace: ns},
		Spec: AgentEnvironmentSpec{ConfigMapRef: &ConfigMapBlueprint{Name: "inspect-blueprint"}}}); err != nil {
		t.Fatal(err)
	}
	cl.waitReady(t, ns, "insp")
	pod := cl.pod(t, ns, "crd-insp")
	if pod == nil {
		t.Fatal("no sandbox pod")
	}
	var cm corev1.ConfigMap
	if err := cl.c.Get(ctx, types.NamespacedName{Namespace: ns, Name: pod.Name}, &cm); err != nil {
		t.Fatal(err)
	}
	bundle := x509.NewCertPool()
	for k, v := range cm.BinaryData {
		if strings.HasPrefix(k, "trust-") {
			bundle.AppendCertsFromPEM(v)
		}
	}
	agent := cl.fakePod(t, pod)
	check := func(r *replica, when string) {
		t.Helper()
		agent.answers(t, r, when) // r serves the pod
		code, err := agent.inspected(r, bundle, "/admin")
		if err != nil || code != http.StatusForbidden {
			t.Fatalf("inspected request through %s %s: %d %v, want the gateway's 403 over TLS the pod trusts", r.identity(), when, code, err)
		}
	}
	check(a, "(replica a)")
	check(b, "(replica b)")

	// A replica restarts (a rolling update): it finds the sandbox's CA in
	// the state.
	b.terminate(t)
	back := cl.startReplica(t, ns, b.home, "--state-url", stateURL)
	check(back, "after it restarted")
}
