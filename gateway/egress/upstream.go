package egress

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"time"
)

// dialVetted connects to the first reachable vetted address of t, directly
// or through the configured corporate proxy. It never resolves: addrs come
// from resolveAndVet.
func (p *Proxy) dialVetted(ctx context.Context, t Target, addrs []netip.Addr) (net.Conn, netip.Addr, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.DialTimeout)
	defer cancel()
	if p.viaUpstreamProxy(t) {
		c, err := p.dialViaUpstreamProxy(ctx, t)
		return c, addrs[0], err
	}
	d := net.Dialer{KeepAlive: 30 * time.Second}
	var errs []error
	for i, a := range addrs {
		if i == 3 {
			break
		}
		c, err := d.DialContext(ctx, "tcp", netip.AddrPortFrom(a, uint16(t.Port)).String())
		if err == nil {
			return c, a, nil
		}
		errs = append(errs, err)
	}
	return nil, netip.Addr{}, fmt.Errorf("connecting to %s: %w", t, errors.Join(errs...))
}

// viaUpstreamProxy says whether t is dialled through Config.UpstreamProxy:
// one is set and t is not in Config.UpstreamNoProxy. httpproxy applies the
// same NO_PROXY rules as Go's HTTP clients, so a NO_PROXY copied from the
// environment means here what it means to every other program on the host
// (it also always exempts localhost and loopback addresses).
func (p *Proxy) viaUpstreamProxy(t Target) bool {
	if p.cfg.UpstreamProxy == nil {
		return false
	}
	if p.noProxy == nil {
		return true
	}
	u, err := p.noProxy(&url.URL{Scheme: "https", Host: t.String()})
	return err != nil || u != nil
}

// dialViaUpstreamProxy opens a CONNECT tunnel through the corporate proxy.
// It sends the name, not the vetted address, so the corporate proxy's own
// domain ACLs still apply.
func (p *Proxy) dialViaUpstreamProxy(ctx context.Context, t Target) (net.Conn, error) {
	u := p.cfg.UpstreamProxy
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "3128")
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connecting to upstream proxy %s: %w; check Config.UpstreamProxy", addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	req := "CONNECT " + t.String() + " HTTP/1.1\r\nHost: " + t.String() + "\r\n"
	if u.User != nil {
		pw, _ := u.User.Password()
		req += "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(u.User.Username()+":"+pw)) + "\r\n"
	}
	if _, err := c.Write([]byte(req + "\r\n")); err != nil {
		c.Close()
		return nil, fmt.Errorf("upstream proxy %s: %w", addr, err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("upstream proxy %s: reading CONNECT response: %w", addr, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		c.Close()
		return nil, fmt.Errorf("upstream proxy %s refused CONNECT %s: %s; ask the proxy's operator to allow it", addr, t, resp.Status)
	}
	c.SetDeadline(time.Time{})
	if br.Buffered() > 0 {
		return &bufferedConn{Conn: c, r: br}, nil
	}
	return c, nil
}

// bufferedConn reads through a bufio.Reader that may hold bytes already
// taken from the connection.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }
