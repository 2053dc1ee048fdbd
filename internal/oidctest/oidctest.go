package oidctest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Identity is who signs in through the device flow.
type Identity struct {
	Subject string
	// Claims are added to the token (e.g. "groups": []string{"ops"}).
	Claims map[string]any
}

// Issuer is a running stand-in issuer.
type Issuer struct {
	// URL is the issuer identifier (http://127.0.0.1:port, or https://).
	URL string
	// ClientID is the audience of the tokens it issues through the flow.
	ClientID string

	srv    *httptest.Server
	key    *rsa.PrivateKey
	kid    string
	signer jose.Signer

	mu      sync.Mutex
	devices map[string]*device // by device code
	refresh map[string]Identity
	// polls counts token endpoint polls for device codes, refreshes the
	// refresh token grants.
	polls, refreshes int
	// ttl is the lifetime of tokens from the token endpoint.
	ttl time.Duration
}

type device struct {
	userCode string
	identity *Identity
	// autoAfter approves with auto once polled this many times.
	auto      *Identity
	autoAfter int
	polled    int
}

// Start runs an issuer on a loopback port over plain HTTP; Close stops it.
func Start(clientID string) (*Issuer, error) { return start(clientID, false) }

// StartTLS runs an issuer over HTTPS with a certificate from a CA of its
// own (127.0.0.1), as a company's private issuer; CAPEM is that CA.
func StartTLS(clientID string) (*Issuer, error) { return start(clientID, true) }

// CAPEM is the PEM of the certificate a StartTLS issuer serves (nil for
// Start): what a client trusts with --ca-file.
func (is *Issuer) CAPEM() []byte {
	if is.srv.TLS == nil {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: is.srv.Certificate().Raw})
}

func start(clientID string, withTLS bool) (*Issuer, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	is := &Issuer{ClientID: clientID, ttl: time.Hour, key: key, kid: randHex(8), devices: map[string]*device{}, refresh: map[string]Identity{}}
	is.signer, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", is.kid))
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", is.discovery)
	mux.HandleFunc("/jwks", is.jwks)
	mux.HandleFunc("/device", is.deviceAuth)
	mux.HandleFunc("/token", is.token)
	is.srv = &httptest.Server{Listener: ln, Config: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}
	if withTLS {
		is.srv.StartTLS()
	} else {
		is.srv.Start()
	}
	is.URL = is.srv.URL
	return is, nil
}

// Close stops the server.
func (is *Issuer) Close() { is.srv.Close() }

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Sign returns a JWT with exactly these claims.
func (is *Issuer) Sign(claims map[string]any) (string, error) {
	b, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	jws, err := is.signer.Sign(b)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// Token returns a valid token for subject with audience aud, expiring in
// ttl (negative for an expired one), carrying extra claims.
func (is *Issuer) Token(subject, aud string, ttl time.Duration, extra map[string]any) (string, error) {
	now := time.Now()
	c := map[string]any{"iss": is.URL, "sub": subject, "aud": aud, "iat": now.Add(-time.Minute).Unix(), "exp": now.Add(ttl).Unix()}
	if ttl < 0 {
		c["iat"] = now.Add(ttl - time.Hour).Unix()
	}
	for k, v := range extra {
		c[k] = v
	}
	return is.Sign(c)
}

// AutoApprove makes every new device code sign in as id once it has been
// polled twice (so the client sees "authorization_pending" first, as with
// a person who has not yet confirmed the code).
func (is *Issuer) AutoApprove(id Identity) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.devices[""] = &device{auto: &id}
}

// SetTTL sets the lifetime of the tokens the token endpoint issues.
func (is *Issuer) SetTTL(d time.Duration) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.ttl = d
}

// Refreshes returns how many refresh token grants succeeded.
func (is *Issuer) Refreshes() int {
	is.mu.Lock()
	defer is.mu.Unlock()
	return is.refreshes
}

// Polls returns how many device-code token requests were made.
func (is *Issuer) Polls() int {
	is.mu.Lock()
	defer is.mu.Unlock()
	return is.polls
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (is *Issuer) discovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, 200, map[string]any{
		"issuer":                                is.URL,
		"jwks_uri":                              is.URL + "/jwks",
		"authorization_endpoint":                is.URL + "/authorize",
		"token_endpoint":                        is.URL + "/token",
		"device_authorization_endpoint":         is.URL + "/device",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"grant_types_supported":                 []string{"urn:ietf:params:oauth:grant-type:device_code", "refresh_token"},
	})
}

func (is *Issuer) jwks(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, 200, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &is.key.PublicKey, KeyID: is.kid, Algorithm: "RS256", Use: "sig"}}})
}

func (is *Issuer) deviceAuth(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.ParseForm() != nil || r.PostForm.Get("client_id") != is.ClientID {
		writeJSON(w, 400, map[string]string{"error": "invalid_client"})
		return
	}
	code, user := randHex(16), fmt.Sprintf("%s-%s", randHex(2), randHex(2))
	is.mu.Lock()
	d := &device{userCode: user}
	if tmpl := is.devices[""]; tmpl != nil {
		d.auto, d.autoAfter = tmpl.auto, 2
	}
	is.devices[code] = d
	is.mu.Unlock()
	writeJSON(w, 200, map[string]any{
		"device_code": code, "user_code": user,
		"verification_uri":          is.URL + "/activate",
		"verification_uri_complete": is.URL + "/activate?user_code=" + user,
		"expires_in":                600, "interval": 1,
	})
}

func (is *Issuer) token(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.ParseForm() != nil {
		writeJSON(w, 400, map[string]string{"error": "invalid_request"})
		return
	}
	var id Identity
	switch r.PostForm.Get("grant_type") {
	case "urn:ietf:params:oauth:grant-type:device_code":
		is.mu.Lock()
		is.polls++
		d := is.devices[r.PostForm.Get("device_code")]
		if d != nil && d.identity == nil && d.auto != nil {
			d.polled++
			if d.polled >= d.autoAfter {
				d.identity = d.auto
			}
		}
		is.mu.Unlock()
		switch {
		case d == nil || r.PostForm.Get("device_code") == "":
			writeJSON(w, 400, map[string]string{"error": "expired_token"})
			return
		case d.identity == nil:
			writeJSON(w, 400, map[string]string{"error": "authorization_pending"})
			return
		}
		id = *d.identity
		is.mu.Lock()
		delete(is.devices, r.PostForm.Get("device_code"))
		is.mu.Unlock()
	case "refresh_token":
		is.mu.Lock()
		got, ok := is.refresh[r.PostForm.Get("refresh_token")]
		delete(is.refresh, r.PostForm.Get("refresh_token"))
		if ok {
			is.refreshes++
		}
		is.mu.Unlock()
		if !ok {
			writeJSON(w, 400, map[string]string{"error": "invalid_grant"})
			return
		}
		id = got
	default:
		writeJSON(w, 400, map[string]string{"error": "unsupported_grant_type"})
		return
	}
	is.mu.Lock()
	ttl := is.ttl
	is.mu.Unlock()
	tok, err := is.Token(id.Subject, is.ClientID, ttl, id.Claims)
	if err != nil {
		writeJSON(w, 500, map[string]string{"error": "server_error"})
		return
	}
	rt := randHex(16)
	is.mu.Lock()
	is.refresh[rt] = id
	is.mu.Unlock()
	writeJSON(w, 200, map[string]any{"access_token": randHex(16), "token_type": "Bearer", "id_token": tok,
		"refresh_token": rt, "expires_in": int(ttl.Seconds())})
}
