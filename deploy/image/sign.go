package image

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// GenerateKey writes a fresh ECDSA P-256 key pair: keyFile (PKCS#8 PEM,
// mode 0600) and pubFile (PKIX PEM), the key formats cosign accepts with
// --key. `make image` makes one when none exists, for local builds; a
// release uses the organisation's key (or keyless signing, see
// docs/deploy/kubernetes.md).
func GenerateKey(keyFile, pubFile string) error {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		return err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644)
}

// SignBlob signs payload as `cosign sign-blob --key` does: an ASN.1 ECDSA
// signature over its SHA-256, base64-encoded. `cosign verify-blob --key
// <pub> --signature <sig> <payload>` verifies it.
func SignBlob(keyFile string, payload []byte) ([]byte, error) {
	b, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("signing key %s: want an unencrypted PKCS#8 PEM (\"PRIVATE KEY\") ECDSA key; an encrypted cosign key must be used with `cosign sign-blob` itself", keyFile)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", keyFile, err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("signing key %s is not an ECDSA key", keyFile)
	}
	sum := sha256.Sum256(payload)
	sig, err := ecdsa.SignASN1(rand.Reader, ek, sum[:])
	if err != nil {
		return nil, err
	}
	return []byte(base64.StdEncoding.EncodeToString(sig)), nil
}

// VerifyBlob checks a SignBlob signature with the PEM public key.
func VerifyBlob(pubFile string, payload, sig []byte) error {
	b, err := os.ReadFile(pubFile)
	if err != nil {
		return err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return fmt.Errorf("%s: no PEM public key", pubFile)
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return err
	}
	ek, ok := k.(*ecdsa.PublicKey)
	if !ok {
		return fmt.Errorf("%s is not an ECDSA public key", pubFile)
	}
	raw, err := base64.StdEncoding.DecodeString(string(sig))
	if err != nil {
		return err
	}
	sum := sha256.Sum256(payload)
	if !ecdsa.VerifyASN1(ek, sum[:], raw) {
		return errors.New("signature does not verify")
	}
	return nil
}
