package kubernetes

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testCA issues a certificate for serverName and returns the CA's PEM.
func testCA(t *testing.T, serverName string) ([]byte, tls.Certificate) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: serverName}, DNSNames: []string{serverName},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestFrontOverTLS(t *testing.T) {
	var caPEM []byte
	d := newTestDriver(t, func(ns string, o *Options, ln *net.Listener) {
		var cert tls.Certificate
		caPEM, cert = testCA(t, "nemoclave-gateway."+ns+".svc")
		o.FrontCA = caPEM
		*ln = tls.NewListener(*ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, pod := d.createStarted(t, testSpec("tls"))
	serveNames("tls", st)
	cfg, _, err := d.config(ctx, "tls")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.GatewayCA != string(caPEM) || cfg.GatewayServerName != "nemoclave-gateway."+d.ns+".svc" {
		t.Fatalf("the sandbox config must carry the Front's CA and name: %q", cfg.GatewayServerName)
	}
	tokFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokFile, []byte(d.mintToken(t, "nc-tls", "nemoclave-gateway", pod)), 0o600); err != nil {
		t.Fatal(err)
	}
	through := func(sc *supervisorConfig) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		sctx, scancel := context.WithCancel(ctx)
		defer scancel()
		go forward(sctx, ln, "inference", sc)
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		b, _ := io.ReadAll(c)
		return string(b)
	}
	sc := &supervisorConfig{Gateway: d.front.Addr().String(), TokenFile: tokFile, GatewayCA: cfg.GatewayCA, GatewayServerName: cfg.GatewayServerName}
	if got := through(sc); got != "tls/inference\n" {
		t.Fatalf("over TLS the connection reached %q", got)
	}
	// A Front whose certificate another CA signed is not the gateway: the
	// supervisor sends it nothing, token included.
	otherCA, _ := testCA(t, cfg.GatewayServerName)
	bad := *sc
	bad.GatewayCA = string(otherCA)
	if got := through(&bad); got != "" {
		t.Fatalf("the supervisor trusted a Front signed by another CA: %q", got)
	}
}
