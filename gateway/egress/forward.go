package egress

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/nemoclave/nemoclave/policy"
)

// judgeHTTP applies an endpoint's allow and deny rules to a request whose
// path is already normalised. Deny wins; with no allow rule every request
// not denied passes. It returns "" when allowed, else the reason.
func judgeHTTP(ep policy.Endpoint, method, path string, query url.Values) string {
	for i, r := range ep.Deny {
		if matchHTTPRule(r, method, path, query) {
			return fmt.Sprintf("%s %s matches deny rule %d of %s", method, path, i+1, ep.Host)
		}
	}
	if len(ep.Allow) == 0 {
		return ""
	}
	for _, r := range ep.Allow {
		if matchHTTPRule(r, method, path, query) {
			return ""
		}
	}
	return fmt.Sprintf("%s %s matches no allow rule of %s", method, path, ep.Host)
}

// matchHTTPRule: every non-empty field must match. Query matches when each
// named parameter is present and each of its values is listed ("*" for
// any value); parameters the rule does not name are ignored.
func matchHTTPRule(r policy.HTTPRule, method, path string, query url.Values) bool {
	if len(r.Methods) > 0 && !contains(r.Methods, method) {
		return false
	}
	if len(r.Paths) > 0 {
		ok := false
		for _, p := range r.Paths {
			if matchPath(p, path) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for name, allowed := range r.Query {
		vals, present := query[name]
		if !present {
			return false
		}
		if contains(allowed, "*") {
			continue
		}
		for _, v := range vals {
			if !contains(allowed, v) {
				return false
			}
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// splitTarget returns the raw path and raw query of an origin-form or
// absolute-form request target, without re-encoding anything.
func splitTarget(requestURI string) (rawPath, rawQuery string, err error) {
	s := requestURI
	if i := strings.Index(s, "://"); i >= 0 && !strings.HasPrefix(s, "/") {
		rest := s[i+3:]
		j := strings.IndexAny(rest, "/?")
		if j < 0 {
			return "/", "", nil
		}
		s = rest[j:]
		if s[0] == '?' {
			s = "/" + s
		}
	}
	if !strings.HasPrefix(s, "/") {
		return "", "", fmt.Errorf("%w: request target %q must be a path (origin form)", errBadRequest, requestURI)
	}
	rawPath, rawQuery, _ = strings.Cut(s, "?")
	return rawPath, rawQuery, nil
}

// prepared is a request that passed the policy, ready to forward.
type prepared struct {
	judged   string // normalised path, for the audit log
	forward  string // origin-form target sent upstream
	query    url.Values
	rawQuery string // as sent, for the audit log (redacted there)
}

// prepareRequest normalises the target and applies the endpoint's rules.
// status is 0 when allowed.
func prepareRequest(ep policy.Endpoint, req *http.Request) (prepared, int, string) {
	rawPath, rawQuery, err := splitTarget(req.RequestURI)
	if err != nil {
		return prepared{}, http.StatusBadRequest, err.Error()
	}
	judged, fwd, err := NormalisePath(rawPath)
	if err != nil {
		return prepared{rawQuery: rawQuery}, http.StatusBadRequest, err.Error()
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return prepared{judged: judged, rawQuery: rawQuery}, http.StatusBadRequest, fmt.Sprintf("%v: malformed query: %v", errBadRequest, err)
	}
	pr := prepared{judged: judged, forward: fwd, query: q, rawQuery: rawQuery}
	if rawQuery != "" {
		pr.forward += "?" + rawQuery
	}
	if reason := judgeHTTP(ep, req.Method, judged, q); reason != "" {
		return pr, http.StatusForbidden, reason
	}
	return pr, 0, ""
}

// upstreamConn is one connection to the upstream server, reused across
// requests while both sides keep it alive.
type upstreamConn struct {
	conn net.Conn
	br   *bufio.Reader
}

// countWriter counts bytes written to the client.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// countReader counts request body bytes and caps them.
type countReader struct {
	r   io.ReadCloser
	n   int64
	max int64
}

func (c *countReader) Read(p []byte) (int, error) {
	if c.n >= c.max {
		return 0, fmt.Errorf("request body over the %d byte cap", c.max)
	}
	if int64(len(p)) > c.max-c.n {
		p = p[:c.max-c.n]
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countReader) Close() error { return c.r.Close() }

// forward sends an allowed request upstream and relays the response. It
// returns the status, bytes each way, and whether both connections may be
// reused.
func (p *Proxy) forward(client io.Writer, up *upstreamConn, req *http.Request, pr prepared, host string) (status int, upN, downN int64, keep bool, err error) {
	out := &http.Request{
		Method:        req.Method,
		URL:           &url.URL{Opaque: pr.forward},
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        req.Header.Clone(),
		Host:          host,
		ContentLength: req.ContentLength,
	}
	if path, query, ok := strings.Cut(pr.forward, "?"); ok {
		out.URL = &url.URL{Opaque: path, RawQuery: query}
	}
	stripHop(out.Header)
	out.Header.Del("Host")
	body := &countReader{r: http.NoBody, max: p.cfg.MaxTunnelBytes}
	if req.Body != nil && req.Body != http.NoBody {
		body.r = req.Body
		out.Body = body
		if req.ContentLength < 0 {
			out.TransferEncoding = []string{"chunked"}
		}
	}
	if strings.EqualFold(req.Header.Get("Expect"), "100-continue") {
		// The request is allowed: let the client send its body now rather
		// than relay the upstream's interim answer after we already wait
		// on that body.
		out.Header.Del("Expect")
		io.WriteString(client, "HTTP/1.1 100 Continue\r\n\r\n")
	}
	if err := out.Write(up.conn); err != nil {
		return 0, body.n, 0, false, fmt.Errorf("sending request upstream: %w", err)
	}
	cw := &countWriter{w: client}
	for {
		resp, err := http.ReadResponse(up.br, out)
		if err != nil {
			return 0, body.n, cw.n, false, fmt.Errorf("reading upstream response: %w", err)
		}
		if resp.StatusCode >= 100 && resp.StatusCode < 200 {
			if resp.StatusCode == http.StatusSwitchingProtocols {
				return resp.StatusCode, body.n, cw.n, false, fmt.Errorf("upstream switched protocols without being asked")
			}
			fmt.Fprintf(cw, "HTTP/1.1 %s\r\n\r\n", resp.Status)
			continue
		}
		stripHop(resp.Header)
		keep = !req.Close && !resp.Close
		resp.Close = !keep
		resp.Body = &countReader{r: resp.Body, max: p.cfg.MaxTunnelBytes}
		err = resp.Write(cw)
		resp.Body.Close()
		if err != nil {
			return resp.StatusCode, body.n, cw.n, false, fmt.Errorf("relaying response: %w", err)
		}
		return resp.StatusCode, body.n, cw.n, keep, nil
	}
}

// lingerBody reads (and drops) up to 256 KiB of a refused request's body
// for at most a second before the connection is closed, so a client still
// uploading reads the refusal instead of a reset.
func lingerBody(c net.Conn, req *http.Request) {
	if req == nil || req.Body == nil || req.Body == http.NoBody {
		return
	}
	c.SetReadDeadline(time.Now().Add(time.Second))
	io.CopyN(io.Discard, req.Body, 256<<10)
}
