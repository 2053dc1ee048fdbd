package cloudstandin

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/internal/testupstream"
)

// The identity the stand-ins expect: Entra's tenant and application, and
// the audience of the tokens Azure OpenAI accepts.
const (
	Tenant   = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	ClientID = "0d6c1a4e-5b8f-4c2e-9a7d-3e1f2b4c6d8e"
	Audience = "https://cognitiveservices.azure.com"
)

// Entra is a Microsoft Entra ID token endpoint over TLS (MSAL
// insists on https): the tenant's OpenID discovery document and the v2.0
// token endpoint for the client-credentials grant, with a client secret or
// a federated client assertion (workload identity). It issues RS256 JWTs
// for the Cognitive Services audience that Azure verifies.
type Entra struct {
	*httptest.Server
	key       *rsa.PrivateKey
	secret    string // accepted client_secret
	assertion string // accepted client_assertion (the federated token)

	mu        sync.Mutex
	issued    int
	lifetimes []int // expires_in of the next tokens; the last one repeats
}

func StartEntra(t testing.TB, secret, assertion string, lifetimes ...int) *Entra {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	if len(lifetimes) == 0 {
		lifetimes = []int{3600}
	}
	e := &Entra{key: key, secret: secret, assertion: assertion, lifetimes: lifetimes}
	e.Server = httptest.NewTLSServer(http.HandlerFunc(e.serve))
	t.Cleanup(e.Close)
	return e
}

// Count is the number of tokens issued so far.
func (e *Entra) Count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.issued
}

func oauthError(w http.ResponseWriter, code int, kind, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": kind, "error_description": desc, "error_codes": []int{7000215}})
}

func (e *Entra) serve(w http.ResponseWriter, r *http.Request) {
	base := e.URL + "/" + Tenant
	switch r.URL.Path {
	case "/" + Tenant + "/v2.0/.well-known/openid-configuration":
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"token_endpoint": base + "/oauth2/v2.0/token", "authorization_endpoint": base + "/oauth2/v2.0/authorize",
			"issuer": base + "/v2.0", "jwks_uri": base + "/discovery/v2.0/keys", "tenant_region_scope": "EU"})
		return
	case "/" + Tenant + "/oauth2/v2.0/token":
	default:
		oauthError(w, 400, "invalid_tenant", "AADSTS90002: Tenant not found "+r.URL.Path)
		return
	}
	if err := r.ParseForm(); err != nil || r.Method != http.MethodPost || r.PostForm.Get("grant_type") != "client_credentials" {
		oauthError(w, 400, "unsupported_grant_type", "AADSTS70003: only client_credentials here")
		return
	}
	if r.PostForm.Get("client_id") != ClientID {
		oauthError(w, 400, "unauthorized_client", "AADSTS700016: Application not found in the directory")
		return
	}
	// MSAL adds openid, profile and offline_access to the scope asked for.
	if !slices.Contains(strings.Fields(r.PostForm.Get("scope")), Audience+"/.default") {
		oauthError(w, 400, "invalid_scope", "AADSTS70011: The provided value for scope is not valid")
		return
	}
	switch {
	case r.PostForm.Has("client_secret"):
		if e.secret == "" || r.PostForm.Get("client_secret") != e.secret {
			oauthError(w, 401, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
			return
		}
	case r.PostForm.Get("client_assertion_type") == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
		if e.assertion == "" || r.PostForm.Get("client_assertion") != e.assertion {
			oauthError(w, 401, "invalid_client", "AADSTS700213: No matching federated identity record found for presented assertion.")
			return
		}
	default:
		oauthError(w, 401, "invalid_client", "AADSTS7000216: client_assertion or client_secret is required")
		return
	}
	tok, life := e.issue()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"token_type": "Bearer", "expires_in": life, "ext_expires_in": life, "access_token": tok})
}

// issue signs the next token and returns it with its lifetime in seconds.
func (e *Entra) issue() (string, int) {
	e.mu.Lock()
	e.issued++
	n := e.issued
	life := e.lifetimes[min(n, len(e.lifetimes))-1]
	e.mu.Unlock()
	now := time.Now()
	return signJWT(e.key, map[string]any{"aud": Audience, "iss": "https://sts.windows.net/" + Tenant + "/", "tid": Tenant,
		"appid": ClientID, "oid": "obj-" + ClientID, "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Duration(life) * time.Second).Unix(), "jti": fmt.Sprintf("token-%d", n)}), life
}

// ManagedIdentity is the local managed identity endpoint Azure App
// Service and Azure Arc give a process (IDENTITY_ENDPOINT, with the
// secret IDENTITY_HEADER): it checks the header, the api-version and the
// resource, and answers with tokens from this Entra.
func (e *Entra) ManagedIdentity(header string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.Header.Get("X-IDENTITY-HEADER") != header || q.Get("api-version") == "" {
			oauthError(w, 401, "invalid_request", "the X-IDENTITY-HEADER or api-version is missing or wrong")
			return
		}
		if strings.TrimSuffix(q.Get("resource"), "/") != Audience {
			oauthError(w, 400, "invalid_resource", "AADSTS500011: resource "+q.Get("resource")+" not found")
			return
		}
		tok, life := e.issue()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "resource": Audience,
			"expires_on": fmt.Sprint(time.Now().Add(time.Duration(life) * time.Second).Unix()), "client_id": ClientID})
	})
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func signJWT(key *rsa.PrivateKey, claims map[string]any) string {
	h, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": "standin"})
	c, _ := json.Marshal(claims)
	in := b64(h) + "." + b64(c)
	sum := sha256.Sum256([]byte(in))
	sig, _ := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	return in + "." + b64(sig)
}

// verifyJWT checks what Azure OpenAI checks of a bearer token: the
// issuer's signature, the audience, the tenant and the validity window.
func verifyJWT(pub *rsa.PublicKey, tok string) (map[string]any, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("not a JWT")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
		return nil, fmt.Errorf("signature: %v", err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		return nil, err
	}
	if claims["aud"] != Audience || claims["tid"] != Tenant {
		return nil, fmt.Errorf("audience %v or tenant %v", claims["aud"], claims["tid"])
	}
	if exp, _ := claims["exp"].(float64); time.Now().Unix() >= int64(exp) {
		return nil, fmt.Errorf("the token expired")
	}
	return claims, nil
}

// Azure is an Azure OpenAI resource: it checks the api-version,
// the deployment and the caller (an api-key, or a bearer token from the
// Entra stand-in), then answers through internal/testupstream's OpenAI
// handler with the deployment's name as the model.
type Azure struct {
	*httptest.Server
	entra *rsa.PublicKey
	key   string // accepted api-key; "" accepts none

	mu     sync.Mutex
	tokens []string // jti of each bearer token accepted, in order
	last   http.Header
	query  string
}

func StartAzure(t testing.TB, entra *Entra, apiKey string) *Azure {
	t.Helper()
	a := &Azure{key: apiKey}
	if entra != nil {
		a.entra = &entra.key.PublicKey
	}
	up := testupstream.Handler(testupstream.Options{})
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.serve(w, r, up)
	}))
	t.Cleanup(a.Close)
	return a
}

func azError(w http.ResponseWriter, code int, kind, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": kind, "message": msg}})
}

func (a *Azure) serve(w http.ResponseWriter, r *http.Request, up http.Handler) {
	a.mu.Lock()
	a.last, a.query = r.Header.Clone(), r.URL.RawQuery
	a.mu.Unlock()
	rest, ok := strings.CutPrefix(r.URL.Path, "/openai/deployments/")
	dep, op, _ := strings.Cut(rest, "/")
	if !ok || op != "chat/completions" || r.Method != http.MethodPost {
		azError(w, 404, "404", "Resource not found")
		return
	}
	if r.URL.Query().Get("api-version") == "" {
		azError(w, 400, "BadRequest", "Missing required query parameter: api-version")
		return
	}
	switch key, bearer := r.Header.Get("api-key"), r.Header.Get("Authorization"); {
	case key != "":
		if a.key == "" || key != a.key {
			azError(w, 401, "401", "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.")
			return
		}
	case strings.HasPrefix(bearer, "Bearer ") && a.entra != nil:
		claims, err := verifyJWT(a.entra, strings.TrimPrefix(bearer, "Bearer "))
		if err != nil {
			azError(w, 401, "InvalidAuthenticationToken", "The access token is invalid: "+err.Error())
			return
		}
		a.mu.Lock()
		a.tokens = append(a.tokens, claims["jti"].(string))
		a.mu.Unlock()
	default:
		azError(w, 401, "PermissionDenied", "Principal does not have access to API/Operation.")
		return
	}
	body, _ := io.ReadAll(r.Body)
	var m map[string]any
	if json.Unmarshal(body, &m) != nil {
		azError(w, 400, "BadRequest", "malformed JSON")
		return
	}
	switch dep {
	case "gpt-test", "fail-429", "fail-500", "fail-400":
	default:
		azError(w, 404, "DeploymentNotFound", "The API deployment for this resource does not exist.")
		return
	}
	m["model"] = dep
	body, _ = json.Marshal(m)
	r2 := r.Clone(r.Context())
	r2.URL.Path, r2.URL.RawQuery, r2.Body, r2.ContentLength = "/v1/chat/completions", "", io.NopCloser(bytes.NewReader(body)), int64(len(body))
	r2.Header.Del("Authorization")
	up.ServeHTTP(w, r2)
}

// Seen returns the jti of every bearer token accepted, in order, and the
// headers and query of the last request.
func (a *Azure) Seen() ([]string, http.Header, string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.tokens...), a.last, a.query
}
