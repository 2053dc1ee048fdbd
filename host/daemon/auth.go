package daemon

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	pb "github.com/nemoclave/nemoclave/host/api/daemonpb"
)

// authenticator verifies remote callers' bearer tokens against the
// configured OIDC issuer. Discovery happens on the first remote call and
// is retried on the next one after a failure, so an issuer that is down
// when the daemon starts does not keep the local socket from serving.
type authenticator struct {
	access *Access
	client *http.Client

	mu       sync.Mutex
	verifier *oidc.IDTokenVerifier
}

func newAuthenticator(a *Access) (*authenticator, error) {
	client := &http.Client{Timeout: 30 * time.Second}
	if a.OIDC.CAFile != "" {
		pem, err := os.ReadFile(a.OIDC.CAFile)
		if err != nil {
			return nil, fmt.Errorf("oidc.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("oidc.ca_file %s holds no PEM certificate", a.OIDC.CAFile)
		}
		client.Transport = &http.Transport{Proxy: http.ProxyFromEnvironment, TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	return &authenticator{access: a, client: client}, nil
}

func (au *authenticator) idVerifier(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	au.mu.Lock()
	defer au.mu.Unlock()
	if au.verifier != nil {
		return au.verifier, nil
	}
	dctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, au.client), 30*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(dctx, au.access.OIDC.Issuer)
	if err != nil {
		return nil, fmt.Errorf("the daemon cannot reach its OIDC issuer %s (discovery): %v; check oidc.issuer in access.hcl and the daemon's network", au.access.OIDC.Issuer, err)
	}
	// The key set keeps dctx's values (the HTTP client) without its
	// cancellation (go-oidc uses context.WithoutCancel), so later key
	// rotations are fetched with the same client.
	au.verifier = p.Verifier(&oidc.Config{ClientID: au.access.OIDC.Audience})
	return au.verifier, nil
}

// authenticate turns a call's bearer token into a Caller.
func (au *authenticator) authenticate(ctx context.Context) (*Caller, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	var raw string
	for _, v := range md.Get("authorization") {
		if t, ok := strings.CutPrefix(v, "Bearer "); ok {
			raw = strings.TrimSpace(t)
		}
	}
	if raw == "" {
		return nil, status.Error(codes.Unauthenticated, "this daemon needs a bearer token: run `nemoclave login --server URL`, or set NEMOCLAVE_TOKEN")
	}
	v, err := au.idVerifier(ctx)
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	tok, err := v.Verify(ctx, raw)
	if err != nil {
		return nil, status.Errorf(codes.Unauthenticated, "token refused: %v; sign in again with `nemoclave login --server URL`", err)
	}
	claims := map[string]any{}
	if err := tok.Claims(&claims); err != nil {
		return nil, status.Errorf(codes.Unauthenticated, "token refused: its claims do not decode: %v", err)
	}
	subject, _ := claims[au.access.OIDC.SubjectClaim].(string)
	if subject == "" {
		subject = tok.Subject
	}
	return &Caller{Subject: "oidc:" + subject, expiry: tok.Expiry, grants: au.access.grantsFor(claims), access: au.access}, nil
}

// guard authenticates and authorizes every call of one listener, and
// audits mutating ones.
type guard struct {
	s    *Server
	auth *authenticator // nil on the unix socket
}

// caller identifies the caller of ctx and checks its role for method.
func (g *guard) caller(ctx context.Context, method string) (*Caller, Class, error) {
	cls, ok := rpcClasses[method]
	if g.auth == nil {
		c := &Caller{Subject: "local:unknown", Local: true}
		if p, ok := peer.FromContext(ctx); ok {
			if li, ok := p.AuthInfo.(localAuth); ok {
				c.Subject = fmt.Sprintf("local:%d", li.uid)
			}
		}
		return c, cls, nil
	}
	if !ok {
		return nil, cls, status.Errorf(codes.PermissionDenied, "%s is not open to remote callers (the daemon does not classify it)", method)
	}
	if cls.Public {
		return &Caller{Subject: "anonymous"}, cls, nil
	}
	c, err := g.auth.authenticate(ctx)
	if err != nil {
		return nil, cls, err
	}
	if r := c.Role(); r < cls.Min {
		if r == RoleNone {
			return c, cls, status.Errorf(codes.PermissionDenied, "%s matches no grant in the daemon's access.hcl; ask an admin for a role", c.Subject)
		}
		article := "a"
		if r == RoleOperator || r == RoleAdmin {
			article = "an"
		}
		return c, cls, status.Errorf(codes.PermissionDenied, "%s is %s %s; %s needs the %s role (ask an admin for it)", c.Subject, article, r, method, cls.Min)
	}
	return c, cls, nil
}

// checkRequest applies the per-sandbox and per-path rules to a request
// (for streams, to their first message).
func (g *guard) checkRequest(ctx context.Context, c *Caller, method string, cls Class, msg any) error {
	if !cls.Sandboxed {
		return nil
	}
	var sandbox string
	switch m := msg.(type) {
	case *pb.SandboxRequest:
		sandbox = m.Name
	case *pb.InferenceSetRequest:
		sandbox = m.Sandbox
	case *pb.ExecInput:
		if m.GetStart() == nil {
			return nil // the handler refuses it
		}
		sandbox = m.GetStart().Sandbox
	case *pb.AttachInput:
		if m.GetStart() == nil {
			return nil // the handler refuses it
		}
		sandbox = m.GetStart().Sandbox
	case *pb.AnswerApprovalRequest:
		sandbox = g.approvalSandbox(ctx, m.Id)
		if sandbox == "" {
			return nil // unknown id: the backend says so
		}
	case *pb.RunRequest:
		return g.checkRun(c, m)
	default:
		return status.Errorf(codes.PermissionDenied, "%s: the daemon does not know which sandbox this request acts on", method)
	}
	if err := c.CheckSandbox(ctx, sandbox); err != nil {
		return status.Error(codes.PermissionDenied, err.Error())
	}
	return nil
}

func (g *guard) checkRun(c *Caller, r *pb.RunRequest) error {
	if c.Local {
		return nil
	}
	if !c.mayAllSandboxes() {
		return status.Errorf(codes.PermissionDenied, "%s may run blueprints only with an operator grant without sandbox patterns (a blueprint names its own sandboxes)", c.Subject)
	}
	if r.Upload != nil {
		// The daemon stores the upload in the caller's own directory and
		// evaluates it confined there (resolveUpload).
		return nil
	}
	// Var files are read by the daemon too: the same rule applies.
	for _, p := range append([]string{r.Path}, r.VarFiles...) {
		if !c.access.allowsRunPath(p) {
			return status.Errorf(codes.PermissionDenied, "a remote run reads the blueprint and its var files on the daemon's host, and %q is not under the run_dirs of its access.hcl; give paths in one of %v", p, c.access.RunDirs)
		}
	}
	return nil
}

// approvalSandbox finds the sandbox of a pending approval.
func (g *guard) approvalSandbox(ctx context.Context, id string) string {
	list, err := g.s.backend.ListApprovals(ctx, "")
	if err != nil {
		return ""
	}
	for _, a := range list {
		if a.Id == id {
			return a.Sandbox
		}
	}
	return ""
}

func (g *guard) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	method := methodName(info.FullMethod)
	c, cls, err := g.caller(ctx, method)
	ctx, ci := withCaller(ctx, c)
	if err == nil {
		err = g.checkRequest(ctx, c, method, cls, req)
	}
	var resp any
	if err == nil {
		resp, err = handler(ctx, req)
	}
	g.s.audit.record(ci, method, cls, err)
	return resp, err
}

// errTokenExpired ends a remote caller's stream when its token expires.
var errTokenExpired = errors.New("token expired")

func (g *guard) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	method := methodName(info.FullMethod)
	c, cls, err := g.caller(ss.Context(), method)
	ctx, ci := withCaller(ss.Context(), c)
	// A token is checked when a stream opens; a stream (logs --tail,
	// connect, exec, the approvals watch) outlives it only until it
	// expires. An attached run's own stream is the exception: ending it
	// stops the agent, so it runs on (its input, an Attach stream, ends).
	if err == nil && c != nil && !c.Local && !c.expiry.IsZero() && method != "Run" {
		var cancel context.CancelCauseFunc
		ctx, cancel = context.WithCancelCause(ctx)
		t := time.AfterFunc(time.Until(c.expiry), func() { cancel(errTokenExpired) })
		defer t.Stop()
		defer cancel(nil)
	}
	if err == nil {
		err = handler(srv, &guardedStream{ServerStream: ss, ctx: ctx, g: g, c: c, method: method, cls: cls})
		if errors.Is(context.Cause(ctx), errTokenExpired) {
			err = status.Errorf(codes.Unauthenticated, "the token of %s expired at %s, which ends this %s stream: sign in again (`nemoclave login --server URL`, or a fresh NEMOCLAVE_TOKEN) and reconnect", c.Subject, c.expiry.UTC().Format(time.RFC3339), method)
		}
	}
	g.s.audit.record(ci, method, cls, err)
	return err
}

// guardedStream carries the caller in its context and checks the first
// message a client sends (a stream's request).
type guardedStream struct {
	grpc.ServerStream
	ctx     context.Context
	g       *guard
	c       *Caller
	method  string
	cls     Class
	checked bool
}

func (s *guardedStream) Context() context.Context { return s.ctx }

func (s *guardedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if !s.checked {
		s.checked = true
		return s.g.checkRequest(s.ctx, s.c, s.method, s.cls, m)
	}
	return nil
}
