package daemon

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	pb "github.com/nemoclave/nemoclave/host/api/daemonpb"
)

// LoginPath is where `nemoclave login` keeps the remote daemon and the
// caller's token (mode 0600).
func LoginPath(home string) string { return filepath.Join(home, "login.json") }

// Login is a remote daemon and how to reach and authenticate to it.
type Login struct {
	// Server is host:port of the daemon's --listen address.
	Server string `json:"server"`
	// Fingerprint pins a self-signed daemon certificate ("sha256:<hex>").
	Fingerprint string `json:"fingerprint,omitempty"`
	// CAFile is a PEM bundle of a private CA (an absolute path): it signs
	// the daemon's certificate (unless Fingerprint pins that) and is
	// trusted, with the system roots, for the OIDC issuer.
	CAFile string `json:"ca_file,omitempty"`
	// Token is the bearer token; NEMOCLAVE_TOKEN overrides it.
	Token        string    `json:"token,omitempty"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
	// TokenURL and ClientID refresh an expired token.
	TokenURL string `json:"token_url,omitempty"`
	ClientID string `json:"client_id,omitempty"`
}

// NormalizeServer turns "https://host:port", "host:port" or "host" into
// host:port (default port 7443).
func NormalizeServer(s string) (string, error) {
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			return "", fmt.Errorf("--server %q: write host:port or https://host:port", s)
		}
		if u.Scheme != "https" && u.Scheme != "grpcs" {
			return "", fmt.Errorf("--server %q: the daemon's remote API is TLS only; use https://", s)
		}
		s = u.Host
	}
	if s == "" {
		return "", errors.New("--server is empty: give the daemon's --listen address, e.g. https://nemoclave.example.com:7443")
	}
	if !strings.Contains(s, ":") || strings.HasSuffix(s, "]") {
		s += ":7443"
	}
	return s, nil
}

// LoadLogin returns the remote login of home, with NEMOCLAVE_SERVER and
// NEMOCLAVE_TOKEN applied, or nil when the CLI talks to the local socket.
func LoadLogin(home string) (*Login, error) {
	var l Login
	b, err := os.ReadFile(LoginPath(home))
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &l); err != nil {
			return nil, fmt.Errorf("%s: %v; run `nemoclave logout` and log in again", LoginPath(home), err)
		}
	case !errors.Is(err, os.ErrNotExist):
		return nil, err
	}
	if s := os.Getenv("NEMOCLAVE_SERVER"); s != "" {
		if l.Server, err = NormalizeServer(s); err != nil {
			return nil, fmt.Errorf("NEMOCLAVE_SERVER: %w", err)
		}
	}
	if t := os.Getenv("NEMOCLAVE_TOKEN"); t != "" {
		l.Token, l.RefreshToken, l.Expiry = t, "", time.Time{}
	}
	if os.Getenv("NEMOCLAVE_FINGERPRINT") != "" {
		l.Fingerprint = os.Getenv("NEMOCLAVE_FINGERPRINT")
	}
	if f := os.Getenv("NEMOCLAVE_CA_FILE"); f != "" {
		l.CAFile = f
	}
	if l.Server == "" {
		return nil, nil
	}
	return &l, nil
}

// Save writes l to home's login file, 0600.
func (l *Login) Save(home string) error {
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return err
	}
	tmp := LoginPath(home) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, LoginPath(home))
}

// TLSConfig verifies the daemon: by its pinned fingerprint, by CAFile, or
// by the system roots.
func (l *Login) TLSConfig() (*tls.Config, error) {
	host := l.Server
	if i := strings.LastIndex(host, ":"); i >= 0 {
		host = strings.Trim(host[:i], "[]")
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
	switch {
	case l.Fingerprint != "":
		want := strings.ToLower(l.Fingerprint)
		// A pinned certificate is the trust anchor itself: chain and name
		// checks are replaced by comparing the leaf with the pin.
		tc.InsecureSkipVerify = true
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the daemon sent no certificate")
			}
			if got := Fingerprint(cs.PeerCertificates[0].Raw); got != want {
				return fmt.Errorf("the daemon's certificate is %s, not the pinned %s: if the daemon's certificate changed on purpose, log in again with --fingerprint %s", got, want, got)
			}
			return nil
		}
	case l.CAFile != "":
		pool := x509.NewCertPool()
		if err := l.addCA(pool); err != nil {
			return nil, err
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// addCA adds CAFile's certificates to pool.
func (l *Login) addCA(pool *x509.CertPool) error {
	pem, err := os.ReadFile(l.CAFile)
	if err != nil {
		return fmt.Errorf("--ca-file: %w", err)
	}
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("--ca-file %s holds no PEM certificate", l.CAFile)
	}
	return nil
}

// IssuerClient is the HTTP client for the OIDC issuer (discovery, device
// code, token refresh): the system roots, plus CAFile's certificates when
// a private CA signs the issuer.
func (l *Login) IssuerClient() (*http.Client, error) {
	if l.CAFile == "" {
		return http.DefaultClient, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if err := l.addCA(pool); err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr}, nil
}

// explainIssuerErr adds what to do when the issuer's certificate is not
// trusted.
func (l *Login) explainIssuerErr(err error) error {
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		return err
	}
	if l.CAFile != "" {
		return fmt.Errorf("%w: the issuer's certificate is not signed by a CA in --ca-file %s or the system roots; give the bundle of the CA that signs it", err, l.CAFile)
	}
	return fmt.Errorf("%w: if a private CA signs the issuer's certificate, give its PEM bundle with `nemoclave login --ca-file FILE`", err)
}

// DeviceSignIn signs in with the OAuth device-code flow of the daemon's
// issuer (info, from RemoteLoginInfo): it prints the URL and code to
// confirm on progress, waits, and fills l's token, refresh token, expiry,
// token URL and client id.
func DeviceSignIn(ctx context.Context, l *Login, info *pb.LoginInfoResponse, progress io.Writer) error {
	if info.Issuer == "" {
		return fmt.Errorf("the daemon at %s has no OIDC issuer configured; its admin sets one in access.hcl", l.Server)
	}
	hc, err := l.IssuerClient()
	if err != nil {
		return err
	}
	ctx = oidc.ClientContext(ctx, hc)
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	provider, err := oidc.NewProvider(dctx, info.Issuer)
	cancel()
	if err != nil {
		return fmt.Errorf("the daemon's OIDC issuer %s: %w", info.Issuer, l.explainIssuerErr(err))
	}
	ep := provider.Endpoint()
	if ep.DeviceAuthURL == "" {
		return fmt.Errorf("the issuer %s offers no device authorization endpoint; enable the device-code grant for client %q, or sign in with NEMOCLAVE_TOKEN", info.Issuer, info.ClientId)
	}
	ep.AuthStyle = oauth2.AuthStyleInParams
	cfg := oauth2.Config{ClientID: info.ClientId, Endpoint: ep, Scopes: append([]string{oidc.ScopeOpenID, oidc.ScopeOfflineAccess}, info.Scopes...)}
	da, err := cfg.DeviceAuth(ctx)
	if err != nil {
		return fmt.Errorf("start the device-code sign-in at %s: %w", ep.DeviceAuthURL, l.explainIssuerErr(err))
	}
	if da.VerificationURIComplete != "" {
		fmt.Fprintf(progress, "To sign in, open %s\n(or open %s and enter the code %s)\n", da.VerificationURIComplete, da.VerificationURI, da.UserCode)
	} else {
		fmt.Fprintf(progress, "To sign in, open %s and enter the code %s\n", da.VerificationURI, da.UserCode)
	}
	fmt.Fprintln(progress, "waiting for you to confirm…")
	tok, err := cfg.DeviceAccessToken(ctx, da)
	if err != nil {
		return fmt.Errorf("device-code sign-in: %w; run `nemoclave login --server %s` again", err, l.Server)
	}
	l.Token, l.RefreshToken, l.Expiry = BearerOf(tok), tok.RefreshToken, tok.Expiry
	l.TokenURL, l.ClientID = ep.TokenURL, info.ClientId
	return nil
}

// bearer sends the token with every call, only over TLS.
type bearer struct{ token string }

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	if b.token == "" {
		return nil, nil
	}
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

func (bearer) RequireTransportSecurity() bool { return true }

// refresh renews an expired token with its refresh token and saves it.
func (l *Login) refresh(ctx context.Context, home string) error {
	if l.RefreshToken == "" || l.TokenURL == "" || l.Expiry.IsZero() || time.Until(l.Expiry) > 30*time.Second {
		return nil
	}
	hc, err := l.IssuerClient()
	if err != nil {
		return err
	}
	cfg := oauth2.Config{ClientID: l.ClientID, Endpoint: oauth2.Endpoint{TokenURL: l.TokenURL, AuthStyle: oauth2.AuthStyleInParams}}
	tok, err := cfg.TokenSource(oidc.ClientContext(ctx, hc), &oauth2.Token{RefreshToken: l.RefreshToken, Expiry: l.Expiry}).Token()
	if err != nil {
		return fmt.Errorf("your login to %s expired and could not be renewed (%v); run `nemoclave login --server %s` again", l.Server, l.explainIssuerErr(err), l.Server)
	}
	l.Token, l.Expiry = BearerOf(tok), tok.Expiry
	if tok.RefreshToken != "" {
		l.RefreshToken = tok.RefreshToken
	}
	return l.Save(home)
}

// BearerOf is the token the daemon verifies: the ID token when the issuer
// sent one (its audience is the client), else the access token.
func BearerOf(tok *oauth2.Token) string {
	if id, ok := tok.Extra("id_token").(string); ok && id != "" {
		return id
	}
	return tok.AccessToken
}

// DialRemote connects to a remote daemon and pings it (which needs at
// least the viewer role, so a bad token fails here with its reason).
func DialRemote(ctx context.Context, home string, l *Login) (*Client, error) {
	if os.Getenv("NEMOCLAVE_TOKEN") == "" {
		if err := l.refresh(ctx, home); err != nil {
			return nil, err
		}
	}
	c, err := dialRemoteConn(l)
	if err != nil {
		return nil, err
	}
	c.Home = home
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if c.Daemon, err = c.rpc.Ping(pctx, &pb.PingRequest{}); err != nil {
		c.Close()
		return nil, fmt.Errorf("remote daemon %s: %w", l.Server, Err(err))
	}
	return c, nil
}

func dialRemoteConn(l *Login) (*Client, error) {
	tc, err := l.TLSConfig()
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(l.Server, grpc.WithTransportCredentials(credentials.NewTLS(tc)), grpc.WithPerRPCCredentials(bearer{l.Token}))
	if err != nil {
		return nil, fmt.Errorf("remote daemon %s: %w", l.Server, err)
	}
	return &Client{conn: conn, rpc: pb.NewDaemonClient(conn), Remote: l.Server}, nil
}

// RemoteLoginInfo asks a daemon how to sign in (no token needed).
func RemoteLoginInfo(ctx context.Context, l *Login) (*pb.LoginInfoResponse, error) {
	c, err := dialRemoteConn(&Login{Server: l.Server, Fingerprint: l.Fingerprint, CAFile: l.CAFile})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	r, err := c.rpc.LoginInfo(ctx, &pb.LoginInfoRequest{})
	if err != nil {
		return nil, fmt.Errorf("remote daemon %s: %w", l.Server, Err(err))
	}
	return r, nil
}

// ErrUntrusted says the daemon's certificate is not trusted by this
// machine and no fingerprint was pinned.
type ErrUntrusted struct{ Server, Fingerprint string }

func (e *ErrUntrusted) Error() string {
	return fmt.Sprintf("the daemon at %s has a certificate this machine does not trust (a self-signed one?); its fingerprint is %s. "+
		"Compare it with the fingerprint the daemon printed when it started, then run `nemoclave login --server %s --fingerprint %s` (or give --ca-file)",
		e.Server, e.Fingerprint, e.Server, e.Fingerprint)
}

// CheckTrust makes a TLS handshake with the login's trust settings. When
// the system roots do not verify the daemon and nothing is pinned, it
// returns *ErrUntrusted with the certificate's fingerprint, which the
// user compares with the one the daemon printed (never pinned blindly).
func (l *Login) CheckTrust(ctx context.Context) error {
	tc, err := l.TLSConfig()
	if err != nil {
		return err
	}
	d := tls.Dialer{Config: tc}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := d.DialContext(dctx, "tcp", l.Server)
	if err == nil {
		return conn.Close()
	}
	var verr *tls.CertificateVerificationError
	if l.Fingerprint != "" || l.CAFile != "" || !errors.As(err, &verr) || len(verr.UnverifiedCertificates) == 0 {
		return fmt.Errorf("remote daemon %s: %w", l.Server, err)
	}
	return &ErrUntrusted{Server: l.Server, Fingerprint: Fingerprint(verr.UnverifiedCertificates[0].Raw)}
}
