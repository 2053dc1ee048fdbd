package inference

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/nemoclave/nemoclave/sdk/llm"
	"github.com/nemoclave/nemoclave/sdk/status"
)

// OverheadHeader is set on every response: milliseconds the gateway spent
// on the request outside the provider call (decode, routing, metering,
// encode). For streams it is measured when the first chunk is sent.
const OverheadHeader = "X-Nemoclave-Overhead-Ms"

// RouteHeader names the alias and provider that answered.
const RouteHeader = "X-Nemoclave-Route"

// dialect is one wire shape's side of a chat call.
type dialect interface {
	endpoint() string
	writeError(w http.ResponseWriter, httpStatus int, msg, code string)
	writeResponse(w http.ResponseWriter, resp *llm.ChatResponse, model string)
	newStream(w http.ResponseWriter, id, model string, includeUsage bool) streamEncoder
	// streamError ends an already started event stream with an error
	// event of this dialect.
	streamError(w http.ResponseWriter, httpStatus int, msg string)
}

// streamEncoder writes one response's stream; each call flushes.
type streamEncoder interface {
	chunk(c *llm.ChatChunk) error
	finish() error
	fail(httpStatus int, msg string)
}

// chatCall is one agent request.
type chatCall struct {
	w   http.ResponseWriter
	d   dialect
	req *llm.ChatRequest
	// decodeErr is why req is nil: the body does not translate. A
	// same-dialect provider may still take it as it is (raw).
	decodeErr error
	// decodeStatus and decodeCode answer decodeErr (default 400
	// invalid_request).
	decodeStatus int
	decodeCode   string
	raw          *rawCall
	// maxOut is the max_tokens the budget left room for when the agent
	// set none; a forwarded body gets it as well.
	maxOut       *int64
	requested    string
	stream       bool
	includeUsage bool
	start        time.Time
	providerTime time.Duration
	span         trace.Span
}

var idSeq atomic.Uint64

func newID(prefix string) string {
	return prefix + strconv.FormatInt(time.Now().UnixNano(), 36) + strconv.FormatUint(idSeq.Add(1), 36)
}

// fallbackable reports whether another route might succeed where this one
// failed. A bad request would fail everywhere; a cancelled one has no
// caller left.
func fallbackable(c status.Code) bool {
	return c != status.InvalidArgument && c != status.Canceled
}

// retryable reports whether the same route is worth another try.
func retryable(c status.Code) bool {
	return c == status.Unavailable || c == status.Unknown || c == status.Internal
}

func (r *Router) serveChat(ctx context.Context, c *chatCall) {
	st := r.state.Load()
	ctx, c.span = startSpan(ctx, r.tracer, "chat", c.requested, r.sandbox, c.stream)
	chain, err := st.routes.chain(c.requested)
	if err != nil {
		r.refuse(c, http.StatusNotFound, err.Error(), "model_not_found")
		return
	}
	want, msg := r.bound(c, chain[0])
	if msg != "" {
		r.refuse(c, http.StatusBadRequest, msg, "invalid_request")
		return
	}
	if ref := r.meter.admit(r.now(), want); ref != nil {
		c.w.Header().Set("Retry-After", strconv.Itoa(int(ref.retryAfter.Seconds())+1))
		r.metrics.refusal(r.sandbox, ref.reason)
		r.auditRefusal(c.d.endpoint(), c.requested, ref)
		code := "rate_limit_exceeded"
		if ref.reason == "budget" {
			code = "budget_exceeded"
		}
		r.refuse(c, http.StatusTooManyRequests, ref.message, code)
		return
	}
	defer r.meter.settle(want)
	var failures []string
	var last error
	for i, s := range chain {
		prov := st.providers[s.route.Provider]
		for try := 0; try <= s.route.Retries; try++ {
			if ok, until := r.health.allow(s.route.Provider, r.now()); !ok {
				last = status.Errorf(status.Unavailable, "provider %s is skipped after repeated failures until %s", s.route.Provider, until.UTC().Format(time.RFC3339))
				failures = append(failures, fmt.Sprintf("%s: %s", s.alias, agentMessage(last)))
				break
			}
			c.span.AddEvent("attempt", trace.WithAttributes(attrFallback.Int(i), attrProvider.String(s.route.Provider), attrResponseModel.String(s.route.Model)))
			var committed, handled bool
			if f := r.forwarder(c, prov); f != nil {
				handled, committed, err = r.forwardOnce(ctx, c, prov, f, s)
			}
			switch {
			case handled:
			case c.req == nil:
				code, errCode := http.StatusBadRequest, "invalid_request"
				if c.decodeStatus != 0 {
					code, errCode = c.decodeStatus, c.decodeCode
				}
				r.refuse(c, code, c.decodeErr.Error(), errCode)
				return
			case c.stream:
				committed, err = r.streamOnce(ctx, c, prov, s)
			default:
				err = r.unaryOnce(ctx, c, prov, s)
			}
			if err == nil || committed {
				switch {
				case err == nil:
					r.health.success(s.route.Provider, r.now())
				case ctx.Err() != nil || status.CodeOf(err) == status.Canceled:
					// The agent hung up mid-stream: says nothing about the
					// provider, so it must not open the breaker for others.
					r.health.abandon(s.route.Provider)
				default:
					r.health.failure(s.route.Provider, r.now(), r.redact(agentMessage(err)))
				}
				return
			}
			code := status.CodeOf(err)
			if tooLarge(err) {
				// The request did not fit the plugin hop: the request's
				// fault, not the provider's, and not a rate limit.
				r.health.abandon(s.route.Provider)
				r.refuse(c, http.StatusRequestEntityTooLarge, fmt.Sprintf("request too large for provider %s: %s; send a smaller request (the gateway accepts bodies up to %d bytes)", s.route.Provider, r.redact(agentMessage(err)), r.maxBody), "request_too_large")
				return
			}
			if ctx.Err() != nil {
				// The agent went away; nothing to answer, no provider at fault.
				r.health.abandon(s.route.Provider)
				r.metrics.request(r.sandbox, c.d.endpoint(), 499)
				endSpanError(c.span, "canceled", "client closed the request")
				return
			}
			msg := r.redact(agentMessage(err))
			r.log.Warn("inference attempt failed", "sandbox", r.sandbox, "alias", s.alias, "provider", s.route.Provider, "model", s.route.Model, "code", code.String(), "error", msg)
			if !fallbackable(code) {
				// The provider answered (it refused the request): healthy.
				r.health.success(s.route.Provider, r.now())
				r.refuse(c, httpStatusOf(code), msg, "")
				return
			}
			r.health.failure(s.route.Provider, r.now(), msg)
			r.metrics.fallback(r.sandbox, s.route.Provider, code.String())
			last = err
			failures = append(failures, fmt.Sprintf("%s (%s %s): %s", s.alias, s.route.Provider, s.route.Model, msg))
			if !retryable(code) {
				break
			}
		}
	}
	msg = fmt.Sprintf("model %q: every route failed: %s", c.requested, strings.Join(failures, "; "))
	r.refuse(c, httpStatusOf(status.CodeOf(last)), msg, "")
}

// refuse answers an error before anything was streamed.
func (r *Router) refuse(c *chatCall, httpStatus int, msg, code string) {
	msg = r.redact(msg)
	r.setOverhead(c.w, time.Since(c.start)-c.providerTime, c.d.endpoint())
	c.d.writeError(c.w, httpStatus, msg, code)
	r.metrics.request(r.sandbox, c.d.endpoint(), httpStatus)
	endSpanError(c.span, strconv.Itoa(httpStatus), msg)
}

func (r *Router) setOverhead(w http.ResponseWriter, d time.Duration, endpoint string) {
	if d < 0 {
		d = 0
	}
	w.Header().Set(OverheadHeader, strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 3, 64))
	r.metrics.observeOverhead(r.sandbox, endpoint, d)
}

func (r *Router) unaryOnce(ctx context.Context, c *chatCall, prov llm.Provider, s step) error {
	labels := callLabels{r.sandbox, "chat", c.requested, s.route.Model, s.route.Provider}
	callCtx, cancel := context.WithTimeout(llm.WithConnectTimeout(ctx, s.route.Connect), s.route.timeout())
	t0 := time.Now()
	resp, err := prov.Chat(callCtx, s.route.apply(c.req))
	c.providerTime += time.Since(t0)
	cancel()
	if err != nil {
		if callCtx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
			err = status.Errorf(status.DeadlineExceeded, "%s did not answer within %s", s.route.Provider, s.route.timeout())
		}
		r.metrics.observeCall(labels, time.Since(c.start), status.CodeOf(err).String(), 0, 0)
		return err
	}
	if resp.ID == "" {
		resp.ID = newID("chatcmpl-")
	}
	r.scrubMessage(&resp.Message)
	u, estimated := resp.Usage, false
	if u.InputTokens == 0 && u.OutputTokens == 0 {
		u, estimated = estimateUsage(c.req, &resp.Message), true
	}
	resp.Usage = u
	r.record(UsageRecord{Time: r.now(), Alias: s.alias, Provider: s.route.Provider, Model: s.route.Model, Operation: "chat",
		InputTokens: u.InputTokens, OutputTokens: u.OutputTokens, CachedInputTokens: u.CachedInputTokens, Estimated: estimated})
	c.w.Header().Set(RouteHeader, s.alias+" "+s.route.Provider)
	r.setOverhead(c.w, time.Since(c.start)-c.providerTime, c.d.endpoint())
	c.d.writeResponse(c.w, resp, c.requested)
	r.metrics.request(r.sandbox, c.d.endpoint(), http.StatusOK)
	r.metrics.observeCall(labels, time.Since(c.start), "", u.InputTokens, u.OutputTokens)
	c.span.SetAttributes(attrProvider.String(s.route.Provider), attrResponseModel.String(s.route.Model), attrResponseID.String(resp.ID),
		attrInputTokens.Int64(u.InputTokens), attrOutputTokens.Int64(u.OutputTokens), attrFinish.StringSlice([]string{resp.FinishReason}))
	c.span.End()
	return nil
}

// streamOnce runs one streaming attempt. It reports committed once the
// first chunk has been written: from then on there is no retry, and a
// failure ends the stream with an error event.
func (r *Router) streamOnce(ctx context.Context, c *chatCall, prov llm.Provider, s step) (bool, error) {
	labels := callLabels{r.sandbox, "chat", c.requested, s.route.Model, s.route.Provider}
	callCtx, cancel := s.route.callContext(ctx)
	defer cancel()
	var timedOut atomic.Bool
	timer := time.AfterFunc(s.route.timeout(), func() { timedOut.Store(true); cancel() })
	defer timer.Stop()
	var (
		enc       streamEncoder
		committed bool
		acc       llm.Accumulator
		id        = newID("chatcmpl-")
	)
	commit := func() {
		c.w.Header().Set(RouteHeader, s.alias+" "+s.route.Provider)
		r.setOverhead(c.w, time.Since(c.start)-c.providerTime, c.d.endpoint())
		enc = c.d.newStream(c.w, id, c.requested, c.includeUsage)
		committed = true
		r.metrics.observeTTFT(labels, time.Since(c.start))
	}
	t0 := time.Now()
	err := prov.ChatStream(callCtx, s.route.apply(c.req), func(ch *llm.ChatChunk) error {
		if !committed {
			if !timer.Stop() {
				return context.DeadlineExceeded
			}
			c.providerTime += time.Since(t0)
			commit()
		}
		r.scrubChunk(ch)
		acc.Add(ch)
		return enc.chunk(ch)
	})
	if !committed {
		c.providerTime += time.Since(t0)
		if err != nil && timedOut.Load() && ctx.Err() == nil {
			err = status.Errorf(status.DeadlineExceeded, "%s sent no first token within %s", s.route.Provider, s.route.timeout())
		}
		if err != nil {
			r.metrics.observeCall(labels, time.Since(c.start), status.CodeOf(err).String(), 0, 0)
			return false, err
		}
		commit() // an empty but successful stream
	}
	if err != nil && s.route.Total > 0 && pastDeadline(callCtx) && ctx.Err() == nil {
		err = status.Errorf(status.DeadlineExceeded, "the answer exceeded the route's total timeout of %s (timeouts.total)", s.route.Total)
	}
	resp := acc.Response()
	u, estimated := resp.Usage, false
	if !acc.UsageReported() {
		u, estimated = estimateUsage(c.req, &resp.Message), true
		if c.includeUsage && err == nil {
			// The agent asked for usage; give it the estimate.
			_ = enc.chunk(&llm.ChatChunk{Usage: &u})
		}
	}
	r.record(UsageRecord{Time: r.now(), Alias: s.alias, Provider: s.route.Provider, Model: s.route.Model, Operation: "chat",
		InputTokens: u.InputTokens, OutputTokens: u.OutputTokens, CachedInputTokens: u.CachedInputTokens, Estimated: estimated})
	errType := ""
	if err != nil {
		code := status.CodeOf(err)
		errType = code.String()
		if ctx.Err() == nil {
			msg := r.redact(agentMessage(err))
			enc.fail(httpStatusOf(code), "the provider failed mid-stream: "+msg)
			r.log.Warn("inference stream failed after first token", "sandbox", r.sandbox, "alias", s.alias, "provider", s.route.Provider, "error", msg)
		}
	} else if ferr := enc.finish(); ferr != nil && !errors.Is(ferr, context.Canceled) {
		errType = "client_write"
	}
	r.metrics.request(r.sandbox, c.d.endpoint(), http.StatusOK)
	r.metrics.observeCall(labels, time.Since(c.start), errType, u.InputTokens, u.OutputTokens)
	c.span.SetAttributes(attrProvider.String(s.route.Provider), attrResponseModel.String(s.route.Model), attrResponseID.String(id),
		attrInputTokens.Int64(u.InputTokens), attrOutputTokens.Int64(u.OutputTokens), attrFinish.StringSlice([]string{resp.FinishReason}))
	if errType != "" {
		endSpanError(c.span, errType, "stream ended early")
	} else {
		c.span.End()
	}
	return true, err
}

// estimateUsage guesses tokens (about four bytes each) when a provider
// reports none, so budgets still count the call.
func estimateUsage(req *llm.ChatRequest, out *llm.Message) llm.Usage {
	in := len(req.System)
	for _, m := range req.Messages {
		in += len(m.Text())
		for _, tc := range m.ToolCalls {
			in += len(tc.Arguments)
		}
	}
	for _, t := range req.Tools {
		in += len(t.Description) + len(t.Parameters)
	}
	o := len(out.Text())
	for _, tc := range out.ToolCalls {
		o += len(tc.Name) + len(tc.Arguments)
	}
	return llm.Usage{InputTokens: int64(in/4 + 1), OutputTokens: int64(o/4 + 1)}
}

func (r *Router) scrubMessage(m *llm.Message) {
	for i := range m.Content {
		m.Content[i].Text = r.redact(m.Content[i].Text)
	}
	for i := range m.ToolCalls {
		m.ToolCalls[i].Arguments = r.redact(m.ToolCalls[i].Arguments)
	}
}

func (r *Router) scrubChunk(c *llm.ChatChunk) {
	if c.DeltaText != "" {
		c.DeltaText = r.redact(c.DeltaText)
	}
	for i := range c.ToolCalls {
		if c.ToolCalls[i].ArgumentsDelta != "" {
			c.ToolCalls[i].ArgumentsDelta = r.redact(c.ToolCalls[i].ArgumentsDelta)
		}
	}
}

// httpStatusOf maps an SDK error code to the agent's HTTP status.
func httpStatusOf(c status.Code) int {
	switch c {
	case status.InvalidArgument:
		return http.StatusBadRequest
	case status.NotFound:
		return http.StatusNotFound
	case status.RateLimited:
		return http.StatusTooManyRequests
	case status.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case status.NotSupported:
		return http.StatusNotImplemented
	case status.Unavailable:
		return http.StatusServiceUnavailable
	}
	// Refused credentials and unknown failures are the gateway's problem,
	// not the agent's: it holds no credential it could fix.
	return http.StatusBadGateway
}
