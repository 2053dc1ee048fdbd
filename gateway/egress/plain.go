package egress

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"time"
)

// hostHeaderTarget canonicalises the single Host header of a request.
func hostHeaderTarget(req *http.Request, defPort int) (Target, bool) {
	hosts := req.Header["Host"]
	if len(hosts) != 1 {
		return Target{}, false
	}
	t, err := ParseHostHeader(hosts[0], defPort)
	return t, err == nil
}

// handlePlain proxies one absolute-form http:// request. The URL's host,
// the Host header and the judged target must be one and the same (row N9).
// It reports whether the client connection may carry another request.
func (p *Proxy) handlePlain(ctx context.Context, sb *sandbox, c net.Conn, br *bufio.Reader, req *http.Request) bool {
	start := time.Now()
	defer lingerBody(c, req)
	ev := Event{Sandbox: sb.id, Kind: "http", Method: req.Method, Query: p.auditQuery(req.URL.RawQuery)}
	t, err := ParseURLTarget(req.URL)
	if err != nil {
		ev.Reason = err.Error()
		p.refuse(c, sb, ev, http.StatusBadRequest, req.Method+" "+trim(req.RequestURI), true)
		return false
	}
	ev.Host, ev.Port = t.Host, t.Port
	what := req.Method + " http://" + t.String()
	if ht, ok := hostHeaderTarget(req, 80); !ok || ht != t {
		ev.Reason = "the Host header does not name the request's target " + t.String()
		p.refuse(c, sb, ev, http.StatusMisdirectedRequest, what, true)
		return false
	}
	d, _ := p.authorize(ctx, sb, t, req.Method, "")
	ev.Revision, ev.Rule, ev.Endpoint = d.revision, d.rule, d.endpoint.Host
	if !d.allow {
		ev.Reason = d.reason
		p.refuse(c, sb, ev, http.StatusForbidden, what, true)
		return false
	}
	pr, status, reason := prepareRequest(d.endpoint, req)
	ev.Path, ev.Query = pr.judged, p.auditQuery(pr.rawQuery)
	if status != 0 {
		ev.Reason = reason
		p.refuse(c, sb, ev, status, req.Method+" http://"+t.String()+pr.judged, true)
		return false
	}
	v, err := p.resolveAndVet(ctx, t, d.endpoint.AllowPrivate)
	if err != nil {
		ev.Reason = err.Error()
		p.refuse(c, sb, ev, http.StatusForbidden, what, true)
		return false
	}
	upc, ip, err := p.dialVetted(ctx, t, v.addrs)
	ev.IP = ip.String()
	if err != nil {
		ev.Reason = err.Error()
		p.refuse(c, sb, ev, http.StatusBadGateway, what, true)
		return false
	}
	defer upc.Close()
	// The request's record exists before any byte of it goes upstream: a
	// log that cannot be written refuses the request (fail closed, R7).
	open := ev
	open.Time, open.Decision, open.Reason = time.Now().UTC(), "open", d.reason
	if err := p.recordStrict(open); err != nil {
		ev.Reason = "the gateway cannot write this request's audit record (" + err.Error() + "); the operator must free space under the audit directory"
		p.refuse(c, sb, ev, http.StatusServiceUnavailable, what, true)
		return false
	}
	tun := &tunnel{target: t}
	tun.attach(c)
	tun.attach(upc)
	sb.addTunnel(tun)
	defer sb.removeTunnel(tun)
	req.Close = true // one upstream connection per plain request
	host := t.Host
	if t.Port != 80 {
		host = t.String()
	}
	up := &upstreamConn{conn: upc, br: bufio.NewReader(upc)}
	st, upN, downN, _, err := p.forward(c, up, req, pr, host)
	ev.Status, ev.BytesUp, ev.BytesDn, ev.Duration = st, upN, downN, msSince(start)
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
	p.metrics.duration.Observe(time.Since(start).Seconds())
	return false
}

func trim(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}
