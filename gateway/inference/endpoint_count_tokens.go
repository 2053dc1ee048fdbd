package inference

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/nemoclave/nemoclave/internal/wire/anthropic"
	"github.com/nemoclave/nemoclave/sdk/llm"
	"github.com/nemoclave/nemoclave/sdk/status"
)

// serveCountTokens answers POST /v1/messages/count_tokens (Claude Code
// asks before long turns). A route whose provider speaks Anthropic is
// asked itself, through Forward, with the agent's headers; otherwise, or
// when that fails, the gateway estimates (about four bytes a token) —
// the count is advisory, so an estimate beats an error. It is not
// metered: counting costs no tokens.
func (r *Router) serveCountTokens(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	d := anthropicDialect{}
	body, err := r.readBody(w, req)
	if err != nil {
		d.writeError(w, http.StatusRequestEntityTooLarge, "request body too large or unreadable: "+err.Error(), "")
		r.metrics.request(r.sandbox, "anthropic_count_tokens", http.StatusRequestEntityTooLarge)
		return
	}
	creq, _, derr := anthropic.DecodeRequest(body)
	model, _, _ := peekFields(body)
	st := r.state.Load()
	chain, err := st.routes.chain(model)
	if err != nil {
		d.writeError(w, http.StatusNotFound, err.Error(), "")
		r.metrics.request(r.sandbox, "anthropic_count_tokens", http.StatusNotFound)
		return
	}
	s := chain[0]
	if f, ok := st.providers[s.route.Provider].(llm.Forwarder); ok {
		c := &chatCall{raw: newRawCall(llm.DialectAnthropic, "/messages/count_tokens", req, body)}
		if fwd, err := forwardBody(c, Route{Model: s.route.Model}); err == nil {
			var out bytes.Buffer
			ctx, cancel := contextWithTimeout(req, s.route.timeout())
			err = f.Forward(llm.WithConnectTimeout(ctx, s.route.Connect), &llm.ForwardRequest{Dialect: llm.DialectAnthropic, Path: c.raw.path, Query: c.raw.query, Headers: c.raw.headers, Body: fwd},
				func(ch *llm.ForwardChunk) error { out.Write(ch.Data); return nil })
			cancel()
			var n struct {
				InputTokens *int64 `json:"input_tokens"`
			}
			if err == nil && json.Unmarshal(out.Bytes(), &n) == nil && n.InputTokens != nil {
				w.Header().Set(RouteHeader, s.alias+" "+s.route.Provider)
				r.setOverhead(w, 0, "anthropic_count_tokens")
				writeJSON(w, http.StatusOK, map[string]int64{"input_tokens": *n.InputTokens})
				r.metrics.request(r.sandbox, "anthropic_count_tokens", http.StatusOK)
				return
			}
			if err != nil && status.CodeOf(err) == status.InvalidArgument {
				d.writeError(w, http.StatusBadRequest, r.redact(agentMessage(err)), "")
				r.metrics.request(r.sandbox, "anthropic_count_tokens", http.StatusBadRequest)
				return
			}
		}
	}
	if derr != nil {
		d.writeError(w, http.StatusBadRequest, derr.Error(), "")
		r.metrics.request(r.sandbox, "anthropic_count_tokens", http.StatusBadRequest)
		return
	}
	u := estimateUsage(creq, &llm.Message{})
	r.setOverhead(w, time.Since(start), "anthropic_count_tokens")
	writeJSON(w, http.StatusOK, map[string]int64{"input_tokens": u.InputTokens})
	r.metrics.request(r.sandbox, "anthropic_count_tokens", http.StatusOK)
}

// contextWithTimeout bounds a call made on behalf of req.
func contextWithTimeout(req *http.Request, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(req.Context(), d)
}
