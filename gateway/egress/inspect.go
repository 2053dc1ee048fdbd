package egress

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// prefixConn replays bytes already read (the ClientHello record) before
// reading the rest of the connection.
type prefixConn struct {
	net.Conn
	r io.Reader
}

func (c *prefixConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// serveInspected terminates the tunnel's TLS with a leaf from the
// sandbox's CA and judges every request on it by method, normalised path
// and query before forwarding it over a fresh, verified TLS connection to a
// vetted address of the target. One audit event is written per request.
func (p *Proxy) serveInspected(ctx context.Context, sb *sandbox, tun *tunnel, c net.Conn, first []byte, br *bufio.Reader, t Target, v vetted, connEv Event, start time.Time) {
	fail := func(reason string) {
		connEv.Decision, connEv.Reason, connEv.Duration = "deny", reason, msSince(start)
		p.record(connEv)
		p.metrics.decision(sb.id, connEv.Kind, "deny")
	}
	ca, err := p.CA(sb.id)
	if err != nil {
		fail(err.Error())
		return
	}
	leaf, err := ca.leaf(t.Host)
	if err != nil {
		fail(err.Error())
		return
	}
	tc := tls.Server(&prefixConn{Conn: c, r: io.MultiReader(bytes.NewReader(first), br)}, &tls.Config{
		Certificates: []tls.Certificate{*leaf},
		NextProtos:   []string{"http/1.1"},
		MinVersion:   tls.VersionTLS12,
	})
	hctx, cancel := context.WithTimeout(ctx, p.cfg.HeaderTimeout)
	err = tc.HandshakeContext(hctx)
	cancel()
	if err != nil {
		fail("TLS handshake with the sandbox failed (does it trust the sandbox CA? see TrustEnv): " + err.Error())
		return
	}
	defer tc.Close()
	connEv.Kind = "inspected"
	var up *upstreamConn
	defer func() {
		if up != nil {
			up.conn.Close()
		}
	}()
	var cur *http.Request
	defer func() { lingerBody(tc, cur) }()
	served := 0
	defer func() {
		if served == 0 { // still one audit line for the allowed CONNECT
			connEv.Decision, connEv.Reason, connEv.Duration = "allow", "inspected tunnel closed before any request", msSince(start)
			p.record(connEv)
			p.metrics.decision(sb.id, connEv.Kind, "allow")
		}
	}()
	cbr := bufio.NewReaderSize(tc, maxHeaderBytes+4096)
	for first := true; ; first = false {
		wait := p.cfg.HeaderTimeout
		if !first {
			wait = p.cfg.IdleTimeout
		}
		c.SetReadDeadline(time.Now().Add(wait))
		if _, err := cbr.Peek(1); err != nil {
			return
		}
		c.SetReadDeadline(time.Now().Add(p.cfg.HeaderTimeout))
		req, err := readRequest(cbr)
		c.SetReadDeadline(time.Time{})
		reqStart := time.Now()
		ev := connEv
		ev.BytesUp, ev.BytesDn, ev.Status, ev.Method = 0, 0, 0, ""
		if err != nil {
			if errors.Is(err, errBadRequest) {
				served++
				ev.Reason = err.Error()
				p.refuse(tc, sb, ev, http.StatusBadRequest, "request to "+t.String(), true)
			}
			return
		}
		served++
		cur = req
		ev.Method = req.Method
		what := req.Method + " https://" + t.String()
		if !strings.HasPrefix(req.RequestURI, "/") {
			ev.Reason = "request target " + quote(req.RequestURI) + " is not origin form (/path); inside a tunnel only the Host header names the host"
			p.refuse(tc, sb, ev, http.StatusBadRequest, what, true)
			return
		}
		if ht, ok := hostHeaderTarget(req, 443); !ok || ht != t {
			ev.Reason = "the Host header does not name the tunnel's target " + t.String()
			p.refuse(tc, sb, ev, http.StatusMisdirectedRequest, what, true)
			return
		}
		// Judge every request against the revision in force now, so a
		// reload applies inside long-lived keep-alive tunnels too.
		d := sb.decide(t)
		ev.Revision, ev.Rule = d.revision, d.rule
		if !d.allow || !d.endpoint.Inspect {
			ev.Reason = "no longer allowed: " + d.reason
			p.refuse(tc, sb, ev, http.StatusForbidden, what, true)
			return
		}
		pr, status, reason := prepareRequest(d.endpoint, req)
		ev.Path, ev.Query = pr.judged, p.auditQuery(pr.rawQuery)
		if status != 0 {
			ev.Reason = reason
			// Close rather than drain a body we refused to read.
			closeConn := req.ContentLength != 0 || status == http.StatusBadRequest
			p.refuse(tc, sb, ev, status, req.Method+" https://"+t.String()+pr.judged, closeConn)
			if closeConn {
				return
			}
			continue
		}
		// As for a plain request: recorded before it goes upstream, or
		// refused (fail closed, R7).
		open := ev
		open.Time, open.Decision, open.Reason = time.Now().UTC(), "open", d.reason
		if err := p.recordStrict(open); err != nil {
			ev.Reason = "the gateway cannot write this request's audit record (" + err.Error() + "); the operator must free space under the audit directory"
			p.refuse(tc, sb, ev, http.StatusServiceUnavailable, what, true)
			return
		}
		if up == nil {
			up, ev.IP, err = p.dialInspectedUpstream(ctx, tun, t, v)
			if err != nil {
				ev.Reason = err.Error()
				p.refuse(tc, sb, ev, http.StatusBadGateway, what, true)
				return
			}
			connEv.IP = ev.IP
		}
		host := t.Host
		if t.Port != 443 {
			host = t.String()
		}
		st, upN, downN, keep, err := p.forward(tc, up, req, pr, host)
		ev.Status, ev.BytesUp, ev.BytesDn, ev.Duration = st, upN, downN, msSince(reqStart)
		ev.Decision, ev.Reason = "allow", d.reason
		if err != nil {
			ev.Reason = d.reason + "; " + err.Error()
		}
		if r := tun.closedReason(); r != "" {
			ev.Decision, ev.Reason = "closed", r
		}
		p.record(ev)
		p.metrics.decision(sb.id, ev.Kind, ev.Decision)
		p.metrics.relayed(sb.id, upN, downN)
		p.metrics.duration.Observe(time.Since(reqStart).Seconds())
		if err != nil || !keep {
			return
		}
	}
}

// dialInspectedUpstream opens the verified TLS connection to the real
// server for an inspected tunnel.
func (p *Proxy) dialInspectedUpstream(ctx context.Context, tun *tunnel, t Target, v vetted) (*upstreamConn, string, error) {
	raw, ip, err := p.dialVetted(ctx, t, v.addrs)
	if err != nil {
		return nil, "", err
	}
	tun.attach(raw)
	cfg := &tls.Config{
		ServerName: t.Host,
		RootCAs:    p.cfg.UpstreamRootCAs,
		NextProtos: []string{"http/1.1"},
		MinVersion: tls.VersionTLS12,
	}
	uc := tls.Client(raw, cfg)
	hctx, cancel := context.WithTimeout(ctx, p.cfg.DialTimeout)
	defer cancel()
	if err := uc.HandshakeContext(hctx); err != nil {
		raw.Close()
		return nil, ip.String(), errors.New("TLS handshake with " + t.String() + " failed: " + err.Error())
	}
	return &upstreamConn{conn: uc, br: bufio.NewReader(uc)}, ip.String(), nil
}
