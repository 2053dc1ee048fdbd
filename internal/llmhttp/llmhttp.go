package llmhttp

import (
	"bytes"
	"context"
	"errors"
	"github.com/nemoclave/nemoclave/internal/secrets"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/nemoclave/nemoclave/sdk/llm"
	"github.com/nemoclave/nemoclave/sdk/status"
)

// NewClient returns the pooled client a plugin keeps per config. connect
// bounds dialling (and the TLS handshake); header bounds the wait for the
// response headers, so a stream may then run as long as its context lets.
func NewClient(connect, header time.Duration) *http.Client {
	if connect <= 0 {
		connect = 10 * time.Second
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer(connect),
		MaxIdleConns:          512,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   connect,
		ResponseHeaderTimeout: header,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{Transport: tr}
}

// dialer dials with the connect timeout, or the one a call's context
// carries (llm.WithConnectTimeout: the route's timeouts.connect).
func dialer(connect time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}
		routed, ok := llm.ConnectTimeout(ctx)
		if ok {
			d.Timeout = routed
		}
		c, err := d.DialContext(ctx, network, addr)
		var ne net.Error
		if ok && err != nil && errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil {
			return nil, &ConnectTimeoutError{Limit: routed}
		}
		return c, err
	}
}

// ConnectTimeoutError is a dial that the route's connect timeout cut.
type ConnectTimeoutError struct{ Limit time.Duration }

func (e *ConnectTimeoutError) Error() string {
	return "the provider did not accept a connection within the route's connect timeout of " + e.Limit.String() + " (timeouts.connect)"
}

// Timeout reports true: it is a timeout for net.Error callers.
func (e *ConnectTimeoutError) Timeout() bool { return true }

// Provider describes how one plugin talks to its API.
type Provider struct {
	// Key is the credential, redacted from every error.
	Key string
	// ErrorMessage extracts the human message from an error body; ""
	// falls back to the trimmed body.
	ErrorMessage func(body []byte) string
	// Code maps an HTTP status to an error class.
	Code func(httpStatus int) status.Code
}

// Do sends method url with body (JSON, when not nil) and the headers set
// writes, through Send.
func (p Provider) Do(ctx context.Context, hc *http.Client, method, url string, body []byte, set func(http.Header)) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	hreq, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, status.Errorf(status.InvalidArgument, "build request: %v", err)
	}
	if body != nil {
		hreq.Header.Set("Content-Type", "application/json")
	}
	set(hreq.Header)
	return p.Send(ctx, hc, hreq)
}

// Send performs hreq and returns a 2xx response (the caller closes its
// body) or a classified error with the key redacted and no URL in it.
func (p Provider) Send(ctx context.Context, hc *http.Client, hreq *http.Request) (*http.Response, error) {
	resp, err := hc.Do(hreq)
	if err != nil {
		var cte *ConnectTimeoutError
		if errors.As(err, &cte) {
			return nil, status.Errorf(status.DeadlineExceeded, "%s", cte.Error())
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			if errors.Is(ctxErr, context.DeadlineExceeded) {
				return nil, status.Errorf(status.DeadlineExceeded, "the provider did not answer in time; raise the plugin's timeout if it is slow")
			}
			return nil, ctxErr
		}
		return nil, status.Errorf(status.Unavailable, "the provider is unreachable: %s", p.Redact(transportReason(err)))
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	msg := ""
	if p.ErrorMessage != nil {
		msg = p.ErrorMessage(raw)
	}
	if msg == "" {
		msg = strings.TrimSpace(string(raw))
	}
	code := status.Unknown
	if p.Code != nil {
		code = p.Code(resp.StatusCode)
	}
	hint := ""
	switch code {
	case status.Unauthenticated, status.PermissionDenied:
		hint = " (the gateway's credential for this provider was refused: check the credential the plugin's api_key names, e.g. nemoclave provider add NAME)"
	case status.NotFound:
		hint = " (check the route's model name and the plugin's base_url)"
	}
	return nil, status.Errorf(code, "the provider answered %d: %s%s", resp.StatusCode, p.Redact(msg), hint)
}

// transportReason is a transport error without the request URL: the
// innermost network error ("connection refused", "i/o timeout").
func transportReason(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Op + ": " + oe.Err.Error()
	}
	var de *net.DNSError
	if errors.As(err, &de) {
		return "name resolution failed: " + de.Err
	}
	return err.Error()
}

// Redact removes the key, and any long-enough piece of it a provider might
// echo ("Incorrect API key provided: sk-abc***xyz"), from text.
func (p Provider) Redact(text string) string { return Redact(text, p.Key) }

// Redact removes key and its 8-character ends from text.
func Redact(text, key string) string {
	// The key whole, any 8-byte piece of it, and any key-shaped token.
	return secrets.New(6, []string{key}).Scrub(text)
}
