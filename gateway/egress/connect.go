package egress

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/nemoclave/nemoclave/policy"
)

// serveConn handles one client connection: a CONNECT (then the tunnel) or a
// sequence of absolute-form HTTP requests.
func (p *Proxy) serveConn(ctx context.Context, sb *sandbox, c net.Conn) {
	defer c.Close()
	br := bufio.NewReaderSize(c, maxHeaderBytes+4096)
	for first := true; ; first = false {
		wait := p.cfg.HeaderTimeout
		if !first {
			wait = p.cfg.IdleTimeout
		}
		c.SetReadDeadline(time.Now().Add(wait))
		if _, err := br.Peek(1); err != nil {
			return
		}
		c.SetReadDeadline(time.Now().Add(p.cfg.HeaderTimeout))
		req, err := readRequest(br)
		if err != nil {
			if errors.Is(err, errBadRequest) {
				p.refuse(c, sb, Event{Kind: "http", Reason: err.Error()}, http.StatusBadRequest, "request", true)
			}
			return
		}
		c.SetReadDeadline(time.Time{})
		if req.Method == http.MethodConnect {
			p.handleConnect(ctx, sb, c, br, req)
			return
		}
		if !p.handlePlain(ctx, sb, c, br, req) {
			return
		}
	}
}

// refuse audits a refusal and writes the HTTP answer.
func (p *Proxy) refuse(w io.Writer, sb *sandbox, e Event, status int, what string, closeConn bool) {
	e.Sandbox, e.Decision, e.Status = sb.id, "deny", status
	p.record(e)
	p.metrics.decision(sb.id, e.Kind, "deny")
	writeRefusal(w, status, sb.id, what, e.Reason, closeConn)
}

// authorize decides a target, holding it for an operator when the policy
// asks. It returns the decision in force and whether an approval made it.
func (p *Proxy) authorize(ctx context.Context, sb *sandbox, t Target, method, path string) (decision, bool) {
	d := sb.decide(t)
	if !d.ask {
		return d, false
	}
	ans, reason := p.approvals.wait(ctx, sb, t, method, path)
	switch ans {
	case AnswerOnce, AnswerSandbox, AnswerPersist:
		return decision{allow: true, rule: "approval:" + string(ans), revision: d.revision,
			endpoint: policy.Endpoint{Host: t.Host, Ports: []int{t.Port}},
			reason:   "approved by the operator (" + string(ans) + ")"}, ans == AnswerOnce
	}
	d.ask, d.reason = false, reason
	return d, false
}

func (p *Proxy) handleConnect(ctx context.Context, sb *sandbox, c net.Conn, br *bufio.Reader, req *http.Request) {
	start := time.Now()
	ev := Event{Sandbox: sb.id, Kind: "connect", Method: http.MethodConnect}
	t, err := ParseAuthority(req.RequestURI)
	if err != nil {
		ev.Host, ev.Reason = req.RequestURI, err.Error()
		p.refuse(c, sb, ev, http.StatusBadRequest, "CONNECT "+req.RequestURI, true)
		return
	}
	ev.Host, ev.Port = t.Host, t.Port
	d, once := p.authorize(ctx, sb, t, http.MethodConnect, "")
	ev.Revision, ev.Rule, ev.Endpoint = d.revision, d.rule, d.endpoint.Host
	if !d.allow {
		ev.Reason = d.reason
		p.refuse(c, sb, ev, http.StatusForbidden, "CONNECT "+t.String(), true)
		return
	}
	open := ev
	open.Time, open.Decision, open.Reason = time.Now().UTC(), "open", d.reason
	if err := p.recordStrict(open); err != nil {
		ev.Reason = "the gateway cannot write this tunnel's audit record (" + err.Error() + "); the operator must free space under the audit directory"
		p.refuse(c, sb, ev, http.StatusServiceUnavailable, "CONNECT "+t.String(), true)
		return
	}
	if _, err := io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}

	// The tunnel is open to the client only; nothing reaches the upstream
	// until the first record has been judged.
	c.SetReadDeadline(time.Now().Add(p.cfg.HeaderTimeout))
	first, readErr := ReadClientHelloRecord(br)
	c.SetReadDeadline(time.Time{})
	sni, opaque, refusal := judgeHello(t, first, readErr, d.endpoint)
	ev.SNI = sni
	closeWith := func(reason string) {
		ev.Decision, ev.Reason = "deny", reason
		ev.Duration = msSince(start)
		p.record(ev)
		p.metrics.decision(sb.id, ev.Kind, "deny")
	}
	if refusal != "" {
		closeWith(refusal)
		return
	}
	v, err := p.resolveAndVet(ctx, t, d.endpoint.AllowPrivate)
	if err != nil {
		closeWith(err.Error())
		return
	}
	tun := &tunnel{target: t, inspect: d.endpoint.Inspect, opaque: opaque, once: once}
	tun.attach(c)
	sb.addTunnel(tun)
	defer sb.removeTunnel(tun)
	// A reload between the decision and here must not be missed.
	if reason := tun.stillAllowed(sb); reason != "" {
		closeWith(reason)
		return
	}
	if d.endpoint.Inspect {
		p.serveInspected(ctx, sb, tun, c, first, br, t, v, ev, start)
		return
	}
	up, ip, err := p.dialVetted(ctx, t, v.addrs)
	ev.IP = ip.String()
	if err != nil {
		closeWith(err.Error())
		return
	}
	tun.attach(up)
	defer up.Close()
	p.metrics.setup.Observe(time.Since(start).Seconds())
	if _, err := up.Write(first); err != nil {
		closeWith("writing to upstream: " + err.Error())
		return
	}
	var pre int64
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		if _, err := up.Write(b); err != nil {
			closeWith("writing to upstream: " + err.Error())
			return
		}
		pre = int64(n)
	}
	upBytes, downBytes := relay(c, up, p.cfg.MaxTunnelBytes, p.cfg.MaxTunnelLifetime)
	ev.BytesUp, ev.BytesDn = upBytes+pre+int64(len(first)), downBytes
	ev.Duration = msSince(start)
	ev.Decision, ev.Reason = "allow", d.reason
	if r := tun.closedReason(); r != "" {
		ev.Decision, ev.Reason = "closed", r
	}
	p.record(ev)
	p.metrics.decision(sb.id, ev.Kind, ev.Decision)
	p.metrics.relayed(sb.id, ev.BytesUp, ev.BytesDn)
	p.metrics.duration.Observe(time.Since(start).Seconds())
}

// judgeHello applies the SNI rules to the first record of a tunnel: the
// ClientHello must name exactly the CONNECT target. Non-TLS bytes, a
// garbled or split hello, no SNI, several names and ECH (on a pass-through
// endpoint) are refused unless the endpoint sets allow_opaque; a name other
// than the target is always refused. A literal-IP target may come without SNI (clients send none for
// addresses).
func judgeHello(t Target, first []byte, readErr error, ep policy.Endpoint) (sni string, opaque bool, refusal string) {
	opaqueOK := func(what string) (string, bool, string) {
		if ep.AllowOpaque && !ep.Inspect {
			return "", true, ""
		}
		if ep.Inspect {
			return "", false, what + "; the endpoint is inspected, so the tunnel must carry TLS"
		}
		return "", false, what + "; set allow_opaque on the endpoint to permit it"
	}
	if readErr != nil {
		switch {
		case errors.Is(readErr, ErrNotTLS):
			return opaqueOK("non-TLS bytes in the tunnel")
		case errors.Is(readErr, ErrMalformedHello):
			return opaqueOK("malformed TLS record: " + readErr.Error())
		}
		return "", false, "no ClientHello received: " + readErr.Error()
	}
	hello, err := ParseClientHello(first)
	if err != nil {
		return opaqueOK("unreadable ClientHello: " + err.Error())
	}
	// With inspection the gateway terminates TLS itself and has no ECH
	// keys, so the handshake uses the outer hello, whose SNI is checked
	// below; this keeps Chromium's GREASE ECH working on inspected
	// endpoints. Passed through, ECH would hide the real server name.
	if hello.ECH && !ep.Inspect {
		return opaqueOK("ClientHello carries encrypted_client_hello, which hides the real server name")
	}
	for _, n := range hello.ServerNames {
		canon, ok := policy.CanonicalHostName(n)
		if !ok || canon != t.Host {
			return n, false, "SNI " + quote(n) + " does not match the CONNECT target " + t.Host
		}
	}
	switch len(hello.ServerNames) {
	case 0:
		if t.IsLiteral() {
			return "", false, ""
		}
		return opaqueOK("ClientHello without SNI")
	case 1:
		return hello.ServerNames[0], false, ""
	default:
		_, o, r := opaqueOK("ClientHello names several servers")
		return hello.ServerNames[0], o, r
	}
}

func quote(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return strconv.Quote(s)
}

func msSince(t time.Time) float64 { return float64(time.Since(t).Microseconds()) / 1000 }
