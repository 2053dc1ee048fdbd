package egress

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"github.com/nemoclave/nemoclave/internal/secrets"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/http/httpproxy"

	"github.com/nemoclave/nemoclave/policy"
)

// Config configures a Proxy. The zero value of every optional field is the
// production default; AuditDir is required.
type Config struct {
	// AuditDir receives egress.jsonl (normally $NEMOCLAVE_HOME/audit).
	// Required: a gateway that cannot record its decisions does not start.
	AuditDir string
	// AuditMaxBytes rotates the audit file past this size (default 64 MiB);
	// AuditKeep rotated files are kept (default 10).
	AuditMaxBytes int64
	AuditKeep     int
	// Registry receives the Prometheus collectors. Nil disables export
	// (the counters still run).
	Registry prometheus.Registerer
	// Logger receives operational errors (audit write failures, upstream
	// errors). Decisions go to the audit log, not here. Default: discard.
	Logger *slog.Logger
	// Redact scrubs the daemon's credentials from what the audit log
	// keeps of a request (its query string), after the generic redaction
	// of credential-named parameters. Nil: the generic redaction only.
	Redact func(string) string

	// Resolver resolves allowed names. Default net.DefaultResolver. Tests
	// inject a map so no real DNS is ever asked.
	Resolver Resolver
	// HostAddrs returns the gateway host's own addresses, which sandboxes
	// may never reach. Default: the host's interface addresses, refreshed
	// every 30 s.
	HostAddrs func() []netip.Addr
	// UpstreamProxy chains every upstream connection through a corporate
	// proxy with CONNECT (http://host:port; userinfo becomes
	// Proxy-Authorization Basic). The target is still resolved and vetted
	// locally first, so SSRF defence does not depend on the corporate proxy.
	UpstreamProxy *url.URL
	// UpstreamNoProxy lists the targets dialled directly although
	// UpstreamProxy is set, in NO_PROXY syntax (comma-separated names,
	// ".suffix" or "suffix" for a domain and its subdomains, IP literals,
	// CIDRs, optional :port, "*" for all). Empty: every target goes through
	// UpstreamProxy.
	UpstreamNoProxy string
	// UpstreamRootCAs verifies upstream servers of inspected endpoints.
	// Nil means the system roots.
	UpstreamRootCAs *x509.CertPool
	// UpstreamCAPEM is a corporate CA bundle (PEM): a TLS-inspecting
	// corporate proxy re-signs every upstream with it. It is added to
	// UpstreamRootCAs (or to the system roots when that is nil) and to
	// every sandbox's TrustBundle, so both inspected endpoints and
	// passthrough tunnels verify. New fails when it holds no certificate.
	UpstreamCAPEM []byte

	// CAStore keeps each sandbox's inspection CA so that every gateway
	// serving the sandbox (the replicas of a cluster, this daemon after a
	// restart) signs with the CA the sandbox trusts. Nil: each gateway
	// makes its own CA per sandbox in memory, and TLS-inspected endpoints
	// work only through the gateway whose CA the sandbox was given.
	CAStore CAStore

	// DialTimeout bounds DNS plus TCP connect (default 10 s).
	DialTimeout time.Duration
	// HeaderTimeout bounds reading a request's headers and, in a CONNECT
	// tunnel, the ClientHello (default 30 s).
	HeaderTimeout time.Duration
	// IdleTimeout closes a keep-alive client connection with no request
	// (default 90 s).
	IdleTimeout time.Duration
	// MaxTunnelBytes caps each direction of one tunnel or request
	// (default 16 GiB); MaxTunnelLifetime caps its duration (default 24 h).
	MaxTunnelBytes    int64
	MaxTunnelLifetime time.Duration

	// MaxConnsPerSandbox caps a sandbox's open client connections
	// (default 512), so one sandbox cannot exhaust the gateway's sockets
	// and goroutines. Past it new connections get 503.
	MaxConnsPerSandbox int

	// ApprovalTimeout is how long a request to an unknown host is held for
	// an operator when unknown_hosts = "ask" (default 2 min); then 403.
	ApprovalTimeout time.Duration
	// MaxPendingPerSandbox bounds distinct held requests per sandbox
	// (default 8); ApprovalBurst and ApprovalRefill bound how fast new ones
	// may be raised (default 10, one more every 6 s). Past either: 403.
	MaxPendingPerSandbox int
	ApprovalBurst        int
	ApprovalRefill       time.Duration
	// OnPersist is called when an operator answers "persist": it receives
	// the new policy revision (already in force for this gateway) so the
	// control plane can store it. An error is returned to the operator.
	OnPersist func(ctx context.Context, sandboxID string, p *policy.Policy) error

	// UnsafeAllowLoopback lets allowed names resolve to loopback addresses.
	// Only tests and benchmarks set it, to reach upstreams on 127.0.0.0/8;
	// in production it would open every host service to the sandbox (row N18).
	UnsafeAllowLoopback bool
}

func (c *Config) defaults() error {
	if c.AuditDir == "" {
		return errors.New("egress: Config.AuditDir is empty; pass $NEMOCLAVE_HOME/audit so every decision is recorded")
	}
	if c.AuditMaxBytes <= 0 {
		c.AuditMaxBytes = 64 << 20
	}
	if c.AuditKeep <= 0 {
		c.AuditKeep = 10
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Resolver == nil {
		c.Resolver = net.DefaultResolver
	}
	if c.HostAddrs == nil {
		h := &hostAddrs{}
		c.HostAddrs = h.get
	}
	if c.UpstreamProxy != nil && (c.UpstreamProxy.Scheme != "http" || c.UpstreamProxy.Host == "") {
		return fmt.Errorf("egress: upstream proxy %q: only http://host:port proxies are supported", c.UpstreamProxy.Redacted())
	}
	if len(c.UpstreamCAPEM) > 0 {
		pool := c.UpstreamRootCAs
		if pool == nil {
			var err error
			if pool, err = x509.SystemCertPool(); err != nil {
				return fmt.Errorf("egress: reading the system roots to add the corporate CA bundle to: %w", err)
			}
		} else {
			pool = pool.Clone()
		}
		if !pool.AppendCertsFromPEM(c.UpstreamCAPEM) {
			return errors.New("egress: the corporate CA bundle holds no PEM certificate; pass a file of -----BEGIN CERTIFICATE----- blocks")
		}
		c.UpstreamRootCAs = pool
	}
	setDur := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	setDur(&c.DialTimeout, 10*time.Second)
	setDur(&c.HeaderTimeout, 30*time.Second)
	setDur(&c.IdleTimeout, 90*time.Second)
	setDur(&c.MaxTunnelLifetime, 24*time.Hour)
	setDur(&c.ApprovalTimeout, 2*time.Minute)
	setDur(&c.ApprovalRefill, 6*time.Second)
	if c.MaxTunnelBytes <= 0 {
		c.MaxTunnelBytes = 16 << 30
	}
	if c.MaxConnsPerSandbox <= 0 {
		c.MaxConnsPerSandbox = 512
	}
	if c.MaxPendingPerSandbox <= 0 {
		c.MaxPendingPerSandbox = 8
	}
	if c.ApprovalBurst <= 0 {
		c.ApprovalBurst = 10
	}
	return nil
}

// Proxy is the egress gateway for every sandbox of one host. Each sandbox
// gets its own listeners (Serve), policy (SetPolicy) and inspection CA.
type Proxy struct {
	cfg       Config
	audit     *auditLog
	metrics   *metrics
	approvals *Approvals

	// noProxy decides UpstreamNoProxy; nil when it is empty.
	noProxy func(*url.URL) (*url.URL, error)

	mu        sync.Mutex
	sandboxes map[string]*sandbox
}

// New builds a Proxy. Close it to flush the audit log.
func New(cfg Config) (*Proxy, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registry)
	if err != nil {
		return nil, fmt.Errorf("egress: registering metrics: %w; pass a fresh prometheus.Registry per gateway", err)
	}
	a, err := openAudit(cfg.AuditDir, cfg.AuditMaxBytes, cfg.AuditKeep)
	if err != nil {
		return nil, err
	}
	p := &Proxy{cfg: cfg, audit: a, metrics: m, sandboxes: map[string]*sandbox{}}
	if cfg.UpstreamProxy != nil && cfg.UpstreamNoProxy != "" {
		p.noProxy = (&httpproxy.Config{HTTPSProxy: cfg.UpstreamProxy.String(), NoProxy: cfg.UpstreamNoProxy}).ProxyFunc()
	}
	p.approvals = newApprovals(p)
	return p, nil
}

// Approvals is the operator-facing queue of held requests (CLI and TUI).
func (p *Proxy) Approvals() *Approvals { return p.approvals }

// Close closes every sandbox's tunnels and the audit log.
func (p *Proxy) Close() error {
	p.mu.Lock()
	ids := make([]string, 0, len(p.sandboxes))
	for id := range p.sandboxes {
		ids = append(ids, id)
	}
	p.mu.Unlock()
	for _, id := range ids {
		p.RemoveSandbox(id)
	}
	return p.audit.Close()
}

// Serve accepts the sandbox's connections on ln until ctx ends or ln fails.
// Every connection on ln belongs to sandboxID and is judged by its policy:
// identity is the listener, never a header. Serve closes ln and the
// connections it accepted before returning.
func (p *Proxy) Serve(ctx context.Context, ln net.Listener, sandboxID string) error {
	if sandboxID == "" {
		ln.Close()
		return errors.New("egress: Serve needs the sandbox id the listener belongs to")
	}
	sb := p.sandbox(sandboxID)
	var wg sync.WaitGroup
	defer wg.Wait() // runs after cancel: connections are closed first
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return fmt.Errorf("egress: accept for sandbox %s: %w", sandboxID, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			stop := context.AfterFunc(ctx, func() { c.Close() })
			defer stop()
			if n := sb.conns.Add(1); n > int64(p.cfg.MaxConnsPerSandbox) {
				sb.conns.Add(-1)
				c.SetDeadline(time.Now().Add(time.Second))
				p.refuse(c, sb, Event{Kind: "connect", Reason: fmt.Sprintf("the sandbox already has %d open connections through the gateway; close some and retry", n-1)},
					http.StatusServiceUnavailable, "connection", true)
				c.Close()
				return
			}
			defer sb.conns.Add(-1)
			p.serveConn(ctx, sb, c)
		}()
	}
}

// sandbox returns the state for id, creating it (with no policy: every
// request denied) on first use.
func (p *Proxy) sandbox(id string) *sandbox {
	p.mu.Lock()
	defer p.mu.Unlock()
	sb := p.sandboxes[id]
	if sb == nil {
		sb = newSandbox(id)
		p.sandboxes[id] = sb
	}
	return sb
}

// SandboxIDs lists the sandboxes the gateway holds state for (policies,
// grants), plugin launches excluded.
func (p *Proxy) SandboxIDs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.sandboxes))
	for id := range p.sandboxes {
		if !IsPluginID(id) {
			out = append(out, id)
		}
	}
	return out
}

func (p *Proxy) lookupSandbox(id string) (*sandbox, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	sb, ok := p.sandboxes[id]
	return sb, ok
}

// RemoveSandbox forgets a sandbox: its tunnels are closed, its held
// requests denied and its lifetime approvals dropped. Listeners still being
// served for it deny everything until their Serve context is cancelled.
func (p *Proxy) RemoveSandbox(id string) {
	p.mu.Lock()
	sb := p.sandboxes[id]
	delete(p.sandboxes, id)
	p.mu.Unlock()
	if sb == nil {
		return
	}
	// A listener the driver has not closed yet still points at sb: with no
	// policy it denies everything.
	sb.mu.Lock()
	sb.pol, sb.grants = nil, map[string]bool{}
	sb.mu.Unlock()
	p.approvals.dropSandbox(id)
	for _, t := range sb.tunnelList() {
		t.close("sandbox removed")
	}
	p.recheckFetchers(id)
}

// maxAuditQuery caps the query string one audit line keeps.
const maxAuditQuery = 1024

// auditQuery is a request's query string as the audit log keeps it.
func (p *Proxy) auditQuery(raw string) string {
	q := secrets.Query(raw, maxAuditQuery)
	if p.cfg.Redact != nil {
		q = p.cfg.Redact(q)
	}
	return q
}

// recordStrict writes an event that must exist before the action it
// records: an error means the action must not happen (fail closed).
func (p *Proxy) recordStrict(e Event) error {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	err := p.audit.Write(e)
	if err != nil {
		p.cfg.Logger.Error("egress refused: its audit record cannot be written", "err", err, "sandbox", e.Sandbox, "host", e.Host)
	}
	return err
}

func (p *Proxy) record(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	if err := p.audit.Write(e); err != nil {
		p.cfg.Logger.Error("egress audit event lost", "err", err, "sandbox", e.Sandbox, "host", e.Host, "decision", e.Decision)
	}
}
