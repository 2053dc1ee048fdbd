package llmhttp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/nemoclave/nemoclave/sdk/llm"
	"github.com/nemoclave/nemoclave/sdk/status"
)

// passedResponseHeaders are the provider answer headers an agent may
// rely on (content type, request ids for support tickets, rate-limit
// state); nothing that sets state in the client (cookies) passes.
func passedResponseHeader(name string) bool {
	n := strings.ToLower(name)
	switch n {
	case "content-type", "request-id", "x-request-id", "retry-after", "openai-processing-ms", "openai-version":
		return true
	}
	return strings.HasPrefix(n, "anthropic-ratelimit-") || strings.HasPrefix(n, "x-ratelimit-")
}

// Forward sends the request (POST with its body, or a bodiless GET or
// DELETE of a stored object) to url with its protocol headers plus
// the plugin's own (set, which adds credentials and configured headers),
// and streams the answer to send: the status and headers first, then the
// body as it arrives, so an event stream is not buffered.
func (p Provider) Forward(ctx context.Context, hc *http.Client, url string, req *llm.ForwardRequest, set func(http.Header), send func(*llm.ForwardChunk) error) error {
	if req.Query != "" {
		url += "?" + req.Query
	}
	var body io.Reader
	method := req.HTTPMethod()
	switch method {
	case http.MethodPost:
		body = bytes.NewReader(req.Body)
	case http.MethodGet, http.MethodDelete:
		// A stored object (GET/DELETE /responses/{id}): no body.
	default:
		return status.Errorf(status.InvalidArgument, "forward: method %q is not one the gateway forwards (POST, GET, DELETE)", method)
	}
	hreq, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return status.Errorf(status.InvalidArgument, "build request: %v", err)
	}
	for k, v := range req.Headers {
		if isCredentialHeader(k) {
			continue
		}
		hreq.Header.Set(k, v)
	}
	if body != nil {
		hreq.Header.Set("Content-Type", "application/json")
	}
	if req.Stream {
		hreq.Header.Set("Accept", "text/event-stream")
	} else {
		hreq.Header.Set("Accept", "application/json")
	}
	set(hreq.Header)
	resp, err := p.Send(ctx, hc, hreq)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	first := &llm.ForwardChunk{Status: resp.StatusCode, Headers: map[string]string{}}
	for k, v := range resp.Header {
		if passedResponseHeader(k) && len(v) > 0 {
			first.Headers[strings.ToLower(k)] = v[0]
		}
	}
	if err := send(first); err != nil {
		return err
	}
	buf := make([]byte, 32<<10)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			data := make([]byte, n)
			copy(data, buf[:n])
			if err := send(&llm.ForwardChunk{Data: data}); err != nil {
				return err
			}
		}
		if errors.Is(rerr, io.EOF) {
			return nil
		}
		if rerr != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return status.Errorf(status.Unavailable, "the provider's answer broke off: %s", p.Redact(transportReason(rerr)))
		}
	}
}

// isCredentialHeader reports headers an agent must never set upstream:
// the gateway's plugin holds the only credential.
func isCredentialHeader(name string) bool {
	switch strings.ToLower(name) {
	case "authorization", "x-api-key", "api-key", "cookie", "proxy-authorization":
		return true
	}
	return false
}
