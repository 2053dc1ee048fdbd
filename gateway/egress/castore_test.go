package egress

import (
	"bufio"
	"bytes"
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/nemoclave/nemoclave/host/state"
	"github.com/nemoclave/nemoclave/policy"
)

func withCAStore(s CAStore) envOpt { return func(c *Config) { c.CAStore = s } }

// inspectedGET makes a GET through an inspected tunnel of the gateway at
// addr, trusting only bundle (what the sandbox was given), and returns
// the status; an error when the TLS handshake with the gateway fails.
func inspectedGET(t *testing.T, addr, hostport, host string, bundle []byte) (int, error) {
	t.Helper()
	tc, err := tunnelTLS(t, addr, hostport, host, certPool(bundle))
	if err != nil {
		return 0, err
	}
	defer tc.Close()
	resp := roundTrip(t, tc, bufio.NewReader(tc), "GET /data HTTP/1.1\r\nHost: "+hostport+"\r\nConnection: close\r\n\r\n")
	return resp.StatusCode, nil
}

// With a CAStore (the daemon's state database) a sandbox's inspection CA
// is made once and every gateway serving the sandbox signs with it: a
// second replica, and a gateway started after the first one's state was
// closed (a daemon restart), answer an inspected request that verifies
// against the bundle the sandbox got from the first. Without a store each
// gateway has its own CA and the sandbox refuses the second's. Deleting
// the sandbox deletes its CA; plugin launches never store theirs.
func TestStoredCA_EveryGatewayInspectsWithTheSandboxCA(t *testing.T) {
	t.Parallel()
	_, port := tlsUpstream(t, echoHandler, "api.example.com")
	hosts := map[string]string{"api.example.com": "127.0.0.1"}
	insp := ep("api.example.com", port)
	insp.Inspect = true
	p := pol(1, policy.UnknownDeny, insp)
	hp := "api.example.com:" + strconv.Itoa(port)
	dbPath := filepath.Join(t.TempDir(), "state.db")
	db, err := state.Open(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	a := newEnv(t, hosts, withCAStore(db))
	bundle, err := a.p.TrustBundle("sb") // what the sandbox trusts
	if err != nil {
		t.Fatal(err)
	}
	b := newEnv(t, hosts, withCAStore(db))
	for name, e := range map[string]*env{"the creating gateway": a, "another replica": b} {
		if code, err := inspectedGET(t, e.serve(t, "sb", p), hp, "api.example.com", bundle); err != nil || code != 200 {
			t.Fatalf("inspected request through %s: %d %v", name, code, err)
		}
	}
	caA, _ := a.p.CA("sb")
	caB, _ := b.p.CA("sb")
	if !bytes.Equal(caA.CertPEM(), caB.CertPEM()) {
		t.Fatal("two gateways on one store hold different CAs for one sandbox")
	}

	// A restart: the state is opened again, a new gateway finds the CA.
	db2, err := state.Open(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	c := newEnv(t, hosts, withCAStore(db2))
	if code, err := inspectedGET(t, c.serve(t, "sb", p), hp, "api.example.com", bundle); err != nil || code != 200 {
		t.Fatalf("inspected request after a restart: %d %v", code, err)
	}

	// Without a store a second gateway makes its own CA: the sandbox
	// refuses it (what every replica but the creator did before).
	own := newEnv(t, hosts)
	if _, err := inspectedGET(t, own.serve(t, "sb", p), hp, "api.example.com", bundle); err == nil ||
		!strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Fatalf("a gateway with its own CA: handshake error %v, want an unknown authority", err)
	}

	// A plugin launch's CA stays in memory.
	pid := PluginID("llm", "x", 1)
	if _, err := a.p.CA(pid); err != nil {
		t.Fatal(err)
	}
	if pb, _ := b.p.CA(pid); pb == nil || bytes.Equal(pb.CertPEM(), mustCA(t, a.p, pid).CertPEM()) {
		t.Fatal("a plugin launch's CA was shared through the store")
	}

	// Deleting the sandbox deletes its CA: the next one of that name gets
	// a new CA.
	if err := db.DeleteSandbox(context.Background(), "sb"); err != nil {
		t.Fatal(err)
	}
	d := newEnv(t, hosts, withCAStore(db))
	if bytes.Equal(mustCA(t, d.p, "sb").CertPEM(), caA.CertPEM()) {
		t.Fatal("the CA of a deleted sandbox was kept")
	}
}

func mustCA(t *testing.T, p *Proxy, id string) *CA {
	t.Helper()
	ca, err := p.CA(id)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// ParseCA refuses what is not the stored CA it claims to be.
func TestParseCARefusesMismatchedKey(t *testing.T) {
	t.Parallel()
	a, _ := NewCA("a")
	b, _ := NewCA("b")
	ka, _ := a.KeyPEM()
	kb, _ := b.KeyPEM()
	if got, err := ParseCA(a.CertPEM(), ka); err != nil || !bytes.Equal(got.CertPEM(), a.CertPEM()) {
		t.Fatalf("round trip: %v", err)
	}
	if _, err := ParseCA(a.CertPEM(), kb); err == nil || !strings.Contains(err.Error(), "does not belong") {
		t.Fatalf("another CA's key: %v", err)
	}
	if _, err := ParseCA(ka, ka); err == nil {
		t.Fatal("a key as the certificate was accepted")
	}
}
