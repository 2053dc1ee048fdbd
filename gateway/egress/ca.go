package egress

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"os"
	"sync"
	"time"
)

// TrustEnvVars are the variables that point the common TLS stacks inside a
// sandbox (OpenSSL, Node, Python requests, curl, git, pip) at the trust
// bundle holding the sandbox CA.
var TrustEnvVars = []string{
	"SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS", "REQUESTS_CA_BUNDLE",
	"CURL_CA_BUNDLE", "GIT_SSL_CAINFO", "PIP_CERT",
}

// TrustEnv returns NAME=bundlePath for each of TrustEnvVars, bundlePath
// being where the caller wrote TrustBundle inside the sandbox.
func TrustEnv(bundlePath string) []string {
	out := make([]string, len(TrustEnvVars))
	for i, v := range TrustEnvVars {
		out[i] = v + "=" + bundlePath
	}
	return out
}

// CA is a sandbox's inspection CA. It signs leaf certificates only for
// inspected endpoints the sandbox connects to, and only the sandbox trusts
// it. With a Config.CAStore its certificate and key are created once per
// sandbox and kept in the store, so every replica of the gateway and a
// restarted daemon inspect with the CA the sandbox trusts; without one it
// lives in this gateway's memory only. Leaf keys are per gateway process.
type CA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	pem     []byte
	leafKey *ecdsa.PrivateKey

	mu     sync.Mutex
	leaves map[string]*tls.Certificate
}

// caLifetime bounds a sandbox CA. It outlives daemon restarts and
// upgrades (it is stored), so it is sized for a long-running agent; a
// sandbox older than this gets a clear refusal on inspected endpoints and
// is re-run.
const caLifetime = 365 * 24 * time.Hour

// NewCA creates a fresh CA for one sandbox.
func NewCA(sandboxID string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("egress CA: key: %w", err)
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("egress CA: leaf key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "nemoclave egress CA for sandbox " + sandboxID, Organization: []string{"nemoclave"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("egress CA: self-sign: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("egress CA: parse: %w", err)
	}
	return &CA{
		cert: cert, key: key, leafKey: leafKey,
		pem:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		leaves: map[string]*tls.Certificate{},
	}, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return big.NewInt(time.Now().UnixNano())
	}
	return n
}

// KeyPEM is the CA's private key (PKCS #8 PEM), for a CAStore only.
func (c *CA) KeyPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(c.key)
	if err != nil {
		return nil, fmt.Errorf("egress CA: encoding the key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseCA rebuilds a CA from the certificate and key KeyPEM and CertPEM
// produced. It refuses a certificate that is not a CA, a key that is not
// the certificate's, and an expired CA.
func ParseCA(certPEM, keyPEM []byte) (*CA, error) {
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, errors.New("egress CA: the stored certificate is not a PEM CERTIFICATE")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("egress CA: the stored certificate: %w", err)
	}
	if !cert.IsCA {
		return nil, errors.New("egress CA: the stored certificate is not a CA certificate")
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil || kb.Type != "PRIVATE KEY" {
		return nil, errors.New("egress CA: the stored key is not a PEM PRIVATE KEY")
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("egress CA: the stored key: %w", err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || !key.PublicKey.Equal(cert.PublicKey) {
		return nil, errors.New("egress CA: the stored key does not belong to the stored certificate")
	}
	if time.Now().After(cert.NotAfter) {
		return nil, fmt.Errorf("egress CA: the sandbox's CA expired on %s; delete the sandbox and run it again for a new one", cert.NotAfter.Format(time.DateOnly))
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("egress CA: leaf key: %w", err)
	}
	return &CA{cert: cert, key: key, leafKey: leafKey,
		pem:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}),
		leaves: map[string]*tls.Certificate{}}, nil
}

// CAStore keeps each sandbox's inspection CA where every gateway serving
// the sandbox finds it (the daemon's state database). The record is
// deleted with the sandbox, by the store's owner.
type CAStore interface {
	// LoadOrStoreCA stores certPEM and keyPEM as the sandbox's CA unless
	// one is stored already, and returns the stored pair: of concurrent
	// callers exactly one pair wins and all get it.
	LoadOrStoreCA(ctx context.Context, sandboxID string, certPEM, keyPEM []byte) (storedCert, storedKey []byte, err error)
}

// loadOrCreateCA returns the sandbox's stored CA, creating and storing it
// when there is none.
func loadOrCreateCA(store CAStore, sandboxID string) (*CA, error) {
	fresh, err := NewCA(sandboxID)
	if err != nil {
		return nil, err
	}
	keyPEM, err := fresh.KeyPEM()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	certPEM, storedKey, err := store.LoadOrStoreCA(ctx, sandboxID, fresh.CertPEM(), keyPEM)
	if err != nil {
		return nil, fmt.Errorf("egress CA of sandbox %s: the state store: %w", sandboxID, err)
	}
	ca, err := ParseCA(certPEM, storedKey)
	if err != nil {
		return nil, fmt.Errorf("sandbox %s: %w", sandboxID, err)
	}
	return ca, nil
}

// CertPEM is the CA certificate (no key), for the sandbox's trust bundle.
func (c *CA) CertPEM() []byte { return bytes.Clone(c.pem) }

// Certificate is the parsed CA certificate.
func (c *CA) Certificate() *x509.Certificate { return c.cert }

// leaf returns a certificate for host signed by the CA, cached per host.
func (c *CA) leaf(host string) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if l, ok := c.leaves[host]; ok && time.Until(l.Leaf.NotAfter) > time.Hour {
		return l, nil
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: host},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if tmpl.NotAfter.After(c.cert.NotAfter) {
		tmpl.NotAfter = c.cert.NotAfter
	}
	if a, err := netip.ParseAddr(host); err == nil {
		tmpl.IPAddresses = append(tmpl.IPAddresses, a.AsSlice())
	} else {
		tmpl.DNSNames = []string{host}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &c.leafKey.PublicKey, c.key)
	if err != nil {
		return nil, fmt.Errorf("egress CA: leaf for %s: %w", host, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("egress CA: leaf for %s: %w", host, err)
	}
	l := &tls.Certificate{Certificate: [][]byte{der, c.cert.Raw}, PrivateKey: c.leafKey, Leaf: leaf}
	if len(c.leaves) > 1024 {
		clear(c.leaves)
	}
	c.leaves[host] = l
	return l, nil
}

// systemBundlePaths are where Linux distributions keep their PEM roots
// (the same list crypto/x509 searches).
var systemBundlePaths = []string{
	"/etc/ssl/certs/ca-certificates.crt",
	"/etc/pki/tls/certs/ca-bundle.crt",
	"/etc/ssl/ca-bundle.pem",
	"/etc/pki/tls/cacert.pem",
	"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
	"/etc/ssl/cert.pem",
}

// SystemRootsPEM reads the host's PEM root bundle, so a sandbox that trusts
// the bundle still trusts the public CAs for endpoints that are not
// inspected.
func SystemRootsPEM() ([]byte, error) {
	paths := systemBundlePaths
	if f := os.Getenv("SSL_CERT_FILE"); f != "" {
		paths = append([]string{f}, paths...)
	}
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil && len(b) > 0 {
			return b, nil
		}
	}
	return nil, errors.New("egress: no system CA bundle found (install ca-certificates); the sandbox would trust only its own CA")
}

// TrustBundle returns the system roots, the corporate CA bundle
// (Config.UpstreamCAPEM) and then the sandbox's CA, the
// file the caller writes into the sandbox and names in TrustEnv. It fails
// when the system roots cannot be read, rather than hand out a bundle that
// breaks every non-inspected TLS connection.
func (p *Proxy) TrustBundle(sandboxID string) ([]byte, error) {
	ca, err := p.CA(sandboxID)
	if err != nil {
		return nil, err
	}
	roots, err := SystemRootsPEM()
	if err != nil {
		return nil, err
	}
	return Bundle(roots, p.cfg.UpstreamCAPEM, ca.CertPEM()), nil
}

// Bundle concatenates PEM blocks, making sure each starts on its own line.
func Bundle(parts ...[]byte) []byte {
	var b bytes.Buffer
	for _, p := range parts {
		b.Write(p)
		if len(p) > 0 && p[len(p)-1] != '\n' {
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}
