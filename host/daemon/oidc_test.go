package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/nemoclave/nemoclave/host/api/daemonpb"
	"github.com/nemoclave/nemoclave/internal/oidctest"
)

// TestOIDC_EveryRPCClassified fails when an RPC of the daemon's service is
// missing from the one class table (remote callers would be refused it),
// or when the table names an RPC the service no longer has.
func TestOIDC_EveryRPCClassified(t *testing.T) {
	t.Parallel()
	served := map[string]bool{}
	for _, m := range pb.Daemon_ServiceDesc.Methods {
		served[m.MethodName] = true
	}
	for _, s := range pb.Daemon_ServiceDesc.Streams {
		served[s.StreamName] = true
	}
	for m := range served {
		cls, ok := rpcClasses[m]
		if !ok {
			t.Errorf("RPC %s has no entry in rpcClasses (host/daemon/rpcclass.go): classify it as viewer, operator or admin", m)
			continue
		}
		if !cls.Public && cls.Min == RoleNone {
			t.Errorf("RPC %s: a class must name its least role or be public", m)
		}
		if cls.Min >= RoleOperator && !cls.Mutating {
			t.Errorf("RPC %s needs %s but is not audited as mutating", m, cls.Min)
		}
	}
	for m := range rpcClasses {
		if !served[m] {
			t.Errorf("rpcClasses names %s, which the Daemon service does not have", m)
		}
	}
}

// oidcBackend has one pending approval per sandbox and records who
// answered, as the runtime does (daemon.CallerFrom).
type oidcBackend struct {
	fakeBackend
	// running is the blueprint path of a running sandbox "up-1", if set.
	running string
}

func (b *oidcBackend) setRunning(bp string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.running = bp
}

func (b *oidcBackend) ListSandboxes(ctx context.Context) ([]*pb.Sandbox, error) {
	list, err := b.fakeBackend.ListSandboxes(ctx)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.running != "" {
		list = append(list, &pb.Sandbox{Name: "up-1", State: "running", Blueprint: b.running})
	}
	return list, err
}

func (b *oidcBackend) ListApprovals(context.Context, string) ([]*pb.Approval, error) {
	return []*pb.Approval{{Id: "ap-box", Sandbox: "box-1"}, {Id: "ap-other", Sandbox: "other"}}, nil
}

func (b *oidcBackend) AnswerApproval(ctx context.Context, id string, allow bool, scope string) (*pb.ApprovalAnswer, error) {
	who := "nobody"
	if c := CallerFrom(ctx); c != nil {
		who = c.Subject
	}
	b.record("AnswerApproval %s %v %s by %s", id, allow, scope, who)
	return &pb.ApprovalAnswer{Id: 1, Operator: who}, nil
}

// Run records where an upload was stored and what the evaluation is
// confined to, as the runtime receives it.
func (b *oidcBackend) Run(ctx context.Context, req RunRequest, ev RunEvents) error {
	if req.Upload != nil || req.Root != "" {
		b.record("Run upload path=%s root=%s varfiles=%v by %s", req.Path, req.Root, req.VarFiles, CallerFrom(ctx).Subject)
	}
	return b.fakeBackend.Run(ctx, req, ev)
}

type remoteFixture struct {
	home, addr, fingerprint string
	issuer                  *oidctest.Issuer
	backend                 *oidcBackend
}

const testAudience = "nemoclave-test"

func startRemote(t testing.TB) *remoteFixture { return startRemoteWith(t, false) }

// startRemoteWith with tlsIssuer runs the issuer over HTTPS with a private
// CA, which the daemon trusts through oidc.ca_file (home/issuer-ca.pem).
func startRemoteWith(t testing.TB, tlsIssuer bool) *remoteFixture {
	t.Helper()
	start := oidctest.Start
	if tlsIssuer {
		start = oidctest.StartTLS
	}
	is, err := start(testAudience)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(is.Close)
	home := t.TempDir()
	runDir := filepath.Join(home, "blueprints")
	if err := os.MkdirAll(runDir, 0o700); err != nil {
		t.Fatal(err)
	}
	caLine := ""
	if tlsIssuer {
		ca := filepath.Join(home, "issuer-ca.pem")
		if err := os.WriteFile(ca, is.CAPEM(), 0o600); err != nil {
			t.Fatal(err)
		}
		caLine = fmt.Sprintf("ca_file = %q", ca)
	}
	access := fmt.Sprintf(`
oidc {
  issuer        = %q
  audience      = %q
  subject_claim = "email"
  %s
}
grant "viewers" {
  value = "viewers"
  role  = "viewer"
}
grant "team-box" {
  value     = "ops"
  role      = "operator"
  sandboxes = ["box-*"]
}
grant "runners" {
  value = "runners"
  role  = "operator"
}
grant "admins" {
  claim = "sub"
  value = "root-admin"
  role  = "admin"
}
run_dirs = [%q]
`, is.URL, testAudience, caLine, runDir)
	if err := os.WriteFile(AccessPath(home), []byte(access), 0o600); err != nil {
		t.Fatal(err)
	}
	b := &oidcBackend{}
	srv, err := Listen(home, b)
	if err != nil {
		t.Fatal(err)
	}
	rem, err := srv.ListenRemote(RemoteOptions{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if !rem.SelfSigned || !strings.HasPrefix(rem.Fingerprint, "sha256:") {
		t.Fatalf("remote: %+v", rem)
	}
	ctx, cancel := context.WithCancel(context.Background())
	finished := make(chan struct{})
	go func() { _ = srv.Serve(ctx); close(finished) }()
	t.Cleanup(func() { cancel(); <-finished })
	return &remoteFixture{home: home, addr: rem.Addr, fingerprint: rem.Fingerprint, issuer: is, backend: b}
}

// as returns a remote client holding token.
func (f *remoteFixture) as(t testing.TB, token string) *Client {
	t.Helper()
	c, err := dialRemoteConn(&Login{Server: f.addr, Fingerprint: f.fingerprint, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (f *remoteFixture) token(t testing.TB, email string, groups ...string) string {
	t.Helper()
	tok, err := f.issuer.Token("sub-"+email, testAudience, time.Hour, map[string]any{"email": email, "groups": groups})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func wantCode(t *testing.T, what string, err error, code codes.Code, msg string) {
	t.Helper()
	if status.Code(err) != code || !strings.Contains(status.Convert(err).Message(), msg) {
		t.Errorf("%s: got %v, want %v containing %q", what, err, code, msg)
	}
}

func controlEvents(t *testing.T, home string) []ControlEvent {
	t.Helper()
	f, err := os.Open(ControlAuditPath(home))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []ControlEvent
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var ev ControlEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("control audit line %q: %v", sc.Text(), err)
		}
		out = append(out, ev)
	}
	return out
}

func hasEvent(evs []ControlEvent, caller, method, sandbox, outcome string) bool {
	for _, e := range evs {
		if e.Caller == caller && e.Method == method && e.Sandbox == sandbox && e.Outcome == outcome {
			return true
		}
	}
	return false
}

func TestOIDC_RolesOverTLS(t *testing.T) {
	t.Parallel()
	f := startRemote(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if st, err := os.Stat(ControlAuditPath(f.home)); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("control audit log: %v %v", st, err)
	}

	// A viewer reads but cannot approve.
	viewer := f.as(t, f.token(t, "vera@example.com", "viewers"))
	if list, err := viewer.ListSandboxes(ctx); err != nil || len(list) != 1 || list[0].Name != "box" {
		t.Fatalf("viewer list: %v %v", list, err)
	}
	p, err := viewer.rpc.Ping(ctx, &pb.PingRequest{})
	if err != nil || p.Caller != "oidc:vera@example.com" || p.Role != "viewer" {
		t.Fatalf("viewer ping: %+v %v", p, err)
	}
	_, err = viewer.rpc.AnswerApproval(ctx, &pb.AnswerApprovalRequest{Id: "ap-box", Allow: true, Scope: "once"})
	wantCode(t, "viewer approves", err, codes.PermissionDenied, "is a viewer; AnswerApproval needs the operator role")
	_, err = viewer.rpc.DeleteSandbox(ctx, &pb.SandboxRequest{Name: "box-1"})
	wantCode(t, "viewer deletes", err, codes.PermissionDenied, "needs the operator role")

	// An operator approves within its sandboxes, and is named for it.
	op := f.as(t, f.token(t, "otto@example.com", "ops"))
	if out, err := op.AnswerApproval(ctx, "ap-box", true, "persist"); err != nil || out.Operator != "oidc:otto@example.com" {
		t.Fatalf("operator approves: %v %v", out, err)
	}
	f.backend.saw(t, "AnswerApproval ap-box true persist by oidc:otto@example.com")
	// ... but not outside them, nor an admin's calls.
	_, err = op.rpc.AnswerApproval(ctx, &pb.AnswerApprovalRequest{Id: "ap-other", Allow: true})
	wantCode(t, "operator approves outside its grant", err, codes.PermissionDenied, `may not act on sandbox "other"`)
	_, err = op.rpc.DeleteSandbox(ctx, &pb.SandboxRequest{Name: "other"})
	wantCode(t, "operator deletes outside its grant", err, codes.PermissionDenied, `may not act on sandbox "other"`)
	if _, err := op.DeleteSandbox(ctx, "box-1"); err != nil {
		t.Fatalf("operator deletes its sandbox: %v", err)
	}
	_, err = op.rpc.SetPolicy(ctx, &pb.SetPolicyRequest{Sandbox: "box-1", AddPresets: []string{"pypi"}})
	wantCode(t, "operator sets policy", err, codes.PermissionDenied, "SetPolicy needs the admin role")
	// Streams check their first message: exec (connect) into another sandbox.
	if _, err := op.Exec(ctx, ExecRequest{Sandbox: "other", Command: []string{"sh"}}, ExecIO{Stdin: strings.NewReader("")}); err == nil || !strings.Contains(err.Error(), `may not act on sandbox "other"`) {
		t.Errorf("operator execs outside its grant: %v", err)
	}
	// A pattern-limited operator cannot run blueprints (they name their own sandboxes).
	err = op.Run(ctx, RunRequest{Path: filepath.Join(f.home, "blueprints", "x.hcl")}, &recordedEvents{})
	if err == nil || !strings.Contains(err.Error(), "without sandbox patterns") {
		t.Errorf("pattern-limited operator runs: %v", err)
	}

	// An admin may change policy, and runs only from run_dirs.
	admin := f.as(t, f.token(t, "ada@example.com"))
	if _, err := admin.rpc.SetPolicy(ctx, &pb.SetPolicyRequest{Sandbox: "box-1", AddPresets: []string{"pypi"}}); err == nil {
		t.Errorf("a token matching no grant (sub sub-ada@example.com) set a policy")
	}
	rootTok, err := f.issuer.Token("root-admin", testAudience, time.Hour, map[string]any{"email": "root@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	admin = f.as(t, rootTok)
	if _, err := admin.SetPolicy(ctx, "box-1", nil, []string{"pypi"}); err != nil {
		t.Fatalf("admin sets policy: %v", err)
	}
	err = admin.Run(ctx, RunRequest{Path: "/etc/passwd"}, &recordedEvents{})
	if err == nil || !strings.Contains(err.Error(), "not under the run_dirs") {
		t.Errorf("admin runs a file outside run_dirs: %v", err)
	}
	bp := filepath.Join(f.home, "blueprints", "ok.hcl")
	if err := os.WriteFile(bp, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err = admin.Run(ctx, RunRequest{Path: bp, VarFiles: []string{"/etc/shadow"}}, &recordedEvents{})
	if err == nil || !strings.Contains(err.Error(), `"/etc/shadow" is not under the run_dirs`) {
		t.Errorf("admin runs with a var file outside run_dirs: %v", err)
	}
	if err := admin.Run(ctx, RunRequest{Path: bp}, &recordedEvents{}); err != nil {
		t.Errorf("admin runs a blueprint in run_dirs: %v", err)
	}

	// The local socket stays full-power and is named local:<uid>.
	local, err := Connect(ctx, f.home, false)
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	if _, err := local.AnswerApproval(ctx, "ap-other", false, ""); err != nil {
		t.Fatal(err)
	}
	localName := fmt.Sprintf("local:%d", os.Getuid())
	f.backend.saw(t, "AnswerApproval ap-other false  by "+localName)

	evs := controlEvents(t, f.home)
	for _, w := range []struct{ caller, method, sandbox, outcome string }{
		{"oidc:otto@example.com", "AnswerApproval", "box-1", "ok"},
		{"oidc:otto@example.com", "AnswerApproval", "other", "denied"},
		{"oidc:otto@example.com", "DeleteSandbox", "box-1", "ok"},
		{"oidc:otto@example.com", "Exec", "other", "denied"},
		{"oidc:vera@example.com", "AnswerApproval", "", "denied"},
		{"oidc:root@example.com", "SetPolicy", "", "ok"},
		{localName, "AnswerApproval", "other", "ok"},
	} {
		if !hasEvent(evs, w.caller, w.method, w.sandbox, w.outcome) {
			t.Errorf("control audit has no %+v; it has %+v", w, evs)
		}
	}
	for _, e := range evs {
		if e.Method == "ListSandboxes" {
			t.Errorf("a successful read was audited: %+v", e)
		}
	}
}

func TestOIDC_BadTokensRefused(t *testing.T) {
	t.Parallel()
	f := startRemote(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	claims := map[string]any{"email": "otto@example.com", "groups": []string{"ops"}}
	expired, err := f.issuer.Token("otto", testAudience, -time.Minute, claims)
	if err != nil {
		t.Fatal(err)
	}
	wrongAud, err := f.issuer.Token("otto", "some-other-app", time.Hour, claims)
	if err != nil {
		t.Fatal(err)
	}
	// Signed by another issuer's key, claiming to be this issuer.
	other, err := oidctest.Start(testAudience)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	forged, err := other.Sign(map[string]any{"iss": f.issuer.URL, "sub": "otto", "aud": testAudience, "exp": time.Now().Add(time.Hour).Unix(), "groups": []string{"ops"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, token, msg string }{
		{"no token", "", "needs a bearer token"},
		{"expired", expired, "expired"},
		{"wrong audience", wrongAud, "audience"},
		{"forged signature", forged, "signature"},
		{"not a JWT", "not-a-jwt", "token refused"},
	} {
		c := f.as(t, tc.token)
		_, err := c.rpc.ListSandboxes(ctx, &pb.ListSandboxesRequest{})
		wantCode(t, tc.name+" (read)", err, codes.Unauthenticated, tc.msg)
		_, err = c.rpc.AnswerApproval(ctx, &pb.AnswerApprovalRequest{Id: "ap-box", Allow: true})
		wantCode(t, tc.name+" (approve)", err, codes.Unauthenticated, tc.msg)
	}
	// LoginInfo alone needs no token: it says how to get one.
	info, err := RemoteLoginInfo(ctx, &Login{Server: f.addr, Fingerprint: f.fingerprint})
	if err != nil || info.Issuer != f.issuer.URL || info.ClientId != testAudience {
		t.Fatalf("login info: %+v %v", info, err)
	}
	for _, c := range f.backend.calls {
		if strings.HasPrefix(c, "AnswerApproval") {
			t.Errorf("a refused token reached the backend: %s", c)
		}
	}
	if !hasEvent(controlEvents(t, f.home), "unauthenticated", "AnswerApproval", "", "denied") {
		t.Error("refused approvals are not in the control audit")
	}
	// A client that does not pin the self-signed certificate is told its
	// fingerprint, and refused.
	err = (&Login{Server: f.addr}).CheckTrust(ctx)
	if err == nil || !strings.Contains(err.Error(), f.fingerprint) {
		t.Errorf("unpinned login: %v", err)
	}
	// A wrong pin is refused.
	if err := (&Login{Server: f.addr, Fingerprint: "sha256:00"}).CheckTrust(ctx); err == nil {
		t.Error("a wrong fingerprint was accepted")
	}
}

// TestOIDC_LoginPrivateCAIssuer: an issuer whose certificate a private
// CA signs is reached with the login's CA file (device-code sign-in and
// token refresh); without it the sign-in fails and says to give --ca-file.
// The daemon itself is pinned by fingerprint in the same login.
func TestOIDC_LoginPrivateCAIssuer(t *testing.T) {
	t.Parallel()
	f := startRemoteWith(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f.issuer.AutoApprove(oidctest.Identity{Subject: "ops-1", Claims: map[string]any{"email": "ops@example.com", "groups": []string{"ops"}}})

	plain := &Login{Server: f.addr, Fingerprint: f.fingerprint}
	info, err := RemoteLoginInfo(ctx, plain)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(info.Issuer, "https://") {
		t.Fatalf("issuer %q is not served over TLS", info.Issuer)
	}
	err = DeviceSignIn(ctx, plain, info, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--ca-file") {
		t.Fatalf("sign-in without the issuer's CA: %v, want an error naming --ca-file", err)
	}

	ca := filepath.Join(t.TempDir(), "corp-ca.pem")
	if err := os.WriteFile(ca, f.issuer.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	l := &Login{Server: f.addr, Fingerprint: f.fingerprint, CAFile: ca}
	var progress strings.Builder
	if err := DeviceSignIn(ctx, l, info, &progress); err != nil {
		t.Fatalf("sign-in with --ca-file: %v", err)
	}
	if !strings.Contains(progress.String(), "To sign in, open https://") || l.Token == "" || l.RefreshToken == "" {
		t.Fatalf("sign-in: progress %q, token set %v, refresh token set %v", progress.String(), l.Token != "", l.RefreshToken != "")
	}
	home := t.TempDir()
	c, err := DialRemote(ctx, home, l)
	if err != nil {
		t.Fatal(err)
	}
	if c.Daemon.Caller != "oidc:ops@example.com" || c.Daemon.Role != "operator" {
		t.Errorf("signed in as %q (%s), want oidc:ops@example.com (operator)", c.Daemon.Caller, c.Daemon.Role)
	}
	c.Close()

	// An expiring token is renewed at the private-CA issuer.
	l.Expiry = time.Now()
	before := f.issuer.Refreshes()
	c, err = DialRemote(ctx, home, l)
	if err != nil {
		t.Fatalf("refresh through the private CA: %v", err)
	}
	c.Close()
	if f.issuer.Refreshes() != before+1 {
		t.Errorf("refreshes %d, want %d", f.issuer.Refreshes(), before+1)
	}
	saved, err := LoadLogin(home)
	if err != nil || saved == nil || saved.CAFile != ca {
		t.Errorf("login.json keeps the CA file: %+v %v", saved, err)
	}
}

func TestOIDC_RemoteNeedsAccessConfig(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	srv, err := Listen(home, &fakeBackend{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.grpc.Stop()
	defer func() {
		if srv.remoteLn != nil {
			srv.remoteLn.Close()
		}
	}()
	if _, err := srv.ListenRemote(RemoteOptions{Addr: "127.0.0.1:0"}); err == nil || !strings.Contains(err.Error(), "access.hcl") {
		t.Fatalf("remote without access.hcl: %v", err)
	}
	for body, want := range map[string]string{
		oidcBlock("http://idp.example.com") + grantBlock("admin"): "use https",
		oidcBlock("https://idp.example.com"):                      "no grant block",
		oidcBlock("https://idp.example.com") + grantBlock("root"): `role "root"`,
		oidcBlock("http://127.0.0.1:1") + grantBlock("operator"):  "", // loopback http is fine
	} {
		if err := os.WriteFile(AccessPath(home), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := srv.ListenRemote(RemoteOptions{Addr: "127.0.0.1:0"})
		if want == "" {
			if err != nil {
				t.Errorf("access.hcl %q: %v", body, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("access.hcl %q: %v, want %q", body, err, want)
		}
	}
}

func oidcBlock(issuer string) string {
	return fmt.Sprintf("oidc {\n  issuer = %q\n  audience = \"x\"\n}\n", issuer)
}

func grantBlock(role string) string {
	return fmt.Sprintf("grant \"g\" {\n  value = \"v\"\n  role = %q\n}\n", role)
}

// BenchmarkOIDC_Ping measures one authenticated remote call (TLS session
// reused, the token's RS256 signature verified on every call) against the
// same call on the unix socket.
func BenchmarkOIDC_Ping(b *testing.B) {
	f := startRemote(b)
	ctx := context.Background()
	remote := f.as(b, f.token(b, "vera@example.com", "viewers"))
	local, err := Connect(ctx, f.home, false)
	if err != nil {
		b.Fatal(err)
	}
	defer local.Close()
	for name, c := range map[string]*Client{"remote": remote, "local": local} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := c.rpc.Ping(ctx, &pb.PingRequest{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
