package inference

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/nemoclave/nemoclave/sdk/llm"
	"github.com/nemoclave/nemoclave/sdk/status"
)

// rawCall is an agent request kept as it arrived, for same-dialect
// pass-through (llm.Forwarder): only the model name, the route's unset
// parameters and (OpenAI streams) stream_options.include_usage change.
type rawCall struct {
	dialect string // llm.DialectOpenAI or llm.DialectAnthropic
	path    string // relative to the provider's /v1 root
	query   string
	headers map[string]string
	body    []byte
}

// forwardedRequestHeaders are the agent's protocol headers a provider of
// the same dialect needs (API version, beta features). Credentials never
// pass: the plugin sets its own.
var forwardedRequestHeaders = []string{"anthropic-version", "anthropic-beta", "openai-beta"}

func newRawCall(dialect, path string, req *http.Request, body []byte) *rawCall {
	rc := &rawCall{dialect: dialect, path: path, query: req.URL.RawQuery, body: body, headers: map[string]string{}}
	for _, h := range forwardedRequestHeaders {
		if v := req.Header.Values(h); len(v) > 0 {
			rc.headers[h] = strings.Join(v, ",")
		}
	}
	return rc
}

// peekFields reads the few top-level fields the router needs before it
// knows whether it will translate (model, stream, stream_options).
func peekFields(body []byte) (model string, stream, includeUsage bool) {
	var p struct {
		Model         string `json:"model"`
		Stream        bool   `json:"stream"`
		StreamOptions *struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
	}
	_ = json.Unmarshal(body, &p)
	return p.Model, p.Stream, p.StreamOptions != nil && p.StreamOptions.IncludeUsage
}

// noForward remembers provider/dialect/path triples that answered
// NotSupported to Forward (plugins older than the RPC, another dialect,
// an OpenAI-compatible server that does not speak the Responses API), so
// they are not asked again.
type noForward struct{ m sync.Map }

func (n *noForward) key(prov llm.Provider, rc *rawCall) string {
	return strconv.FormatUint(uint64(providerID(prov)), 10) + "/" + rc.dialect + rc.path
}

var (
	providerIDs   sync.Map // llm.Provider -> uint64
	providerIDSeq atomic.Uint64
)

// providerID gives each provider value a stable number; a restarted
// plugin is a new value and is probed again.
func providerID(p llm.Provider) uint64 {
	if v, ok := providerIDs.Load(p); ok {
		return v.(uint64)
	}
	v, _ := providerIDs.LoadOrStore(p, providerIDSeq.Add(1))
	return v.(uint64)
}

// forwarder returns the provider's Forwarder when pass-through applies.
func (r *Router) forwarder(c *chatCall, prov llm.Provider) llm.Forwarder {
	if c.raw == nil {
		return nil
	}
	f, ok := prov.(llm.Forwarder)
	if !ok {
		return nil
	}
	if _, no := r.noForward.m.Load(r.noForward.key(prov, c.raw)); no {
		return nil
	}
	return f
}

// forwardBody is the agent's body for this route: its model, the route's
// parameters where the agent set none, and (OpenAI streams) a usage
// report the gateway meters and hides again if the agent did not ask.
func forwardBody(c *chatCall, rt Route) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(c.raw.body, &m); err != nil {
		return nil, status.Errorf(status.InvalidArgument, "request body must be a JSON object: %v", err)
	}
	m["model"], _ = json.Marshal(rt.Model)
	setDefault := func(key string, v any) {
		if _, ok := m[key]; !ok && v != nil {
			m[key], _ = json.Marshal(v)
		}
	}
	p := rt.Parameters
	maxTokens := p.MaxTokens
	if c.maxOut != nil && (maxTokens == nil || *c.maxOut < *maxTokens) {
		maxTokens = c.maxOut
	}
	if p.Temperature != nil {
		setDefault("temperature", *p.Temperature)
	}
	if p.TopP != nil {
		setDefault("top_p", *p.TopP)
	}
	if maxTokens != nil {
		switch {
		case c.raw.path == "/responses":
			setDefault("max_output_tokens", *maxTokens)
		case c.raw.dialect == llm.DialectOpenAI:
			if _, ok := m["max_tokens"]; !ok {
				setDefault("max_completion_tokens", *maxTokens)
			}
		default:
			setDefault("max_tokens", *maxTokens)
		}
	}
	if len(p.Extra) > 0 {
		var extra map[string]json.RawMessage
		if json.Unmarshal(p.Extra, &extra) == nil {
			for k, v := range extra {
				if _, ok := m[k]; !ok {
					m[k] = v
				}
			}
		}
	}
	if c.stream && c.raw.dialect == llm.DialectOpenAI && c.raw.path == "/chat/completions" && !c.includeUsage {
		var so map[string]json.RawMessage
		_ = json.Unmarshal(m["stream_options"], &so)
		if so == nil {
			so = map[string]json.RawMessage{}
		}
		so["include_usage"] = json.RawMessage("true")
		m["stream_options"], _ = json.Marshal(so)
	}
	return json.Marshal(m)
}

// forwardOnce runs one pass-through attempt. It reports handled=false
// when the provider does not forward this dialect (the caller translates
// instead), and committed once the answer's status line was written.
func (r *Router) forwardOnce(ctx context.Context, c *chatCall, prov llm.Provider, f llm.Forwarder, s step) (handled, committed bool, err error) {
	labels := callLabels{r.sandbox, "chat", c.requested, s.route.Model, s.route.Provider}
	body, err := forwardBody(c, s.route)
	if err != nil {
		return true, false, err
	}
	c.span.AddEvent("forward", trace.WithAttributes(attrProvider.String(s.route.Provider)))
	callCtx, cancel := s.route.callContext(ctx)
	defer cancel()
	var timedOut atomic.Bool
	timer := time.AfterFunc(s.route.timeout(), func() { timedOut.Store(true); cancel() })
	defer timer.Stop()
	var (
		out   = &forwardWriter{w: c.w, stream: c.stream, hideUsage: c.raw.dialect == llm.DialectOpenAI && c.stream && !c.includeUsage, redact: r.redact, model: c.requested}
		first bool
		t0    = time.Now()
	)
	if out.model == "" {
		out.model = s.alias
	}
	req := &llm.ForwardRequest{Dialect: c.raw.dialect, Path: c.raw.path, Query: c.raw.query, Headers: c.raw.headers, Body: body, Stream: c.stream}
	err = f.Forward(callCtx, req, func(ch *llm.ForwardChunk) error {
		if !first {
			first = true
			if c.stream && !timer.Stop() {
				return context.DeadlineExceeded
			}
			c.providerTime += time.Since(t0)
			c.w.Header().Set(RouteHeader, s.alias+" "+s.route.Provider)
			r.setOverhead(c.w, time.Since(c.start)-c.providerTime, c.d.endpoint())
			if c.stream {
				r.metrics.observeTTFT(labels, time.Since(c.start))
			}
			committed = c.stream
			return out.begin(ch)
		}
		return out.data(ch.Data)
	})
	if !first {
		c.providerTime += time.Since(t0)
		if status.CodeOf(err) == status.NotSupported && !timedOut.Load() {
			r.noForward.m.Store(r.noForward.key(prov, c.raw), true)
			return false, false, nil
		}
		if err != nil && timedOut.Load() && ctx.Err() == nil {
			err = status.Errorf(status.DeadlineExceeded, "%s did not answer within %s", s.route.Provider, s.route.timeout())
		}
		if err == nil {
			err = status.Errorf(status.Unavailable, "%s sent an empty answer", s.route.Provider)
		}
		r.metrics.observeCall(labels, time.Since(c.start), status.CodeOf(err).String(), 0, 0)
		return true, false, err
	}
	if !c.stream {
		if err != nil {
			if timedOut.Load() && ctx.Err() == nil {
				err = status.Errorf(status.DeadlineExceeded, "%s did not answer within %s", s.route.Provider, s.route.timeout())
			}
			r.metrics.observeCall(labels, time.Since(c.start), status.CodeOf(err).String(), 0, 0)
			return true, false, err
		}
		committed = true
		out.flushUnary()
	}
	if err != nil && s.route.Total > 0 && pastDeadline(callCtx) && ctx.Err() == nil {
		err = status.Errorf(status.DeadlineExceeded, "the answer exceeded the route's total timeout of %s (timeouts.total)", s.route.Total)
	}
	u, reported := out.usage, out.usageSeen
	if !reported {
		u = llm.Usage{InputTokens: int64(len(c.raw.body)/4 + 1), OutputTokens: int64(out.n/4 + 1)}
	}
	r.record(UsageRecord{Time: r.now(), Alias: s.alias, Provider: s.route.Provider, Model: s.route.Model, Operation: "chat",
		InputTokens: u.InputTokens, OutputTokens: u.OutputTokens, CachedInputTokens: u.CachedInputTokens, Estimated: !reported})
	errType := ""
	if err != nil {
		errType = status.CodeOf(err).String()
		if ctx.Err() == nil {
			msg := r.redact(agentMessage(err))
			c.d.streamError(c.w, httpStatusOf(status.CodeOf(err)), "the provider failed mid-stream: "+msg)
			r.log.Warn("inference stream failed after first token", "sandbox", r.sandbox, "alias", s.alias, "provider", s.route.Provider, "error", msg)
		}
	} else if out.err != nil && !errors.Is(out.err, context.Canceled) {
		errType = "client_write"
	}
	r.metrics.request(r.sandbox, c.d.endpoint(), out.status)
	r.metrics.observeCall(labels, time.Since(c.start), errType, u.InputTokens, u.OutputTokens)
	c.span.SetAttributes(attrProvider.String(s.route.Provider), attrResponseModel.String(s.route.Model),
		attrInputTokens.Int64(u.InputTokens), attrOutputTokens.Int64(u.OutputTokens))
	if errType != "" {
		endSpanError(c.span, errType, "stream ended early")
	} else {
		c.span.End()
	}
	return true, committed, err
}

// forwardWriter writes a forwarded answer to the agent: a unary body
// whole (after redaction), a stream event by event, reading usage on the
// way and dropping the usage-only chunk the gateway asked for itself.
type forwardWriter struct {
	w         http.ResponseWriter
	stream    bool
	hideUsage bool
	redact    func(string) string
	// model is the name the agent asked for, which answers report (as
	// translated answers do) instead of the provider's model.
	model     string
	status    int
	buf       bytes.Buffer
	n         int
	usage     llm.Usage
	usageSeen bool
	err       error
}

func (o *forwardWriter) begin(ch *llm.ForwardChunk) error {
	o.status = ch.Status
	if o.status == 0 {
		o.status = http.StatusOK
	}
	h := o.w.Header()
	for k, v := range ch.Headers {
		h.Set(k, v)
	}
	if o.stream {
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Accel-Buffering", "no")
		h.Del("Content-Length")
		o.w.WriteHeader(o.status)
	}
	return o.data(ch.Data)
}

func (o *forwardWriter) data(b []byte) error {
	o.n += len(b)
	o.buf.Write(b)
	if !o.stream {
		return nil
	}
	for {
		ev, rest, ok := cutEvent(o.buf.Bytes())
		if !ok {
			return nil
		}
		// Copy both halves out before the buffer is reused.
		ev = append([]byte(nil), ev...)
		next := append([]byte(nil), rest...)
		o.buf.Reset()
		o.buf.Write(next)
		if o.observe(ev) {
			continue
		}
		ev = o.rewriteEvent(ev)
		if _, err := o.w.Write(append([]byte(o.redact(string(ev))), '\n', '\n')); err != nil {
			o.err = err
			return err
		}
		if f, ok := o.w.(http.Flusher); ok {
			f.Flush()
		}
	}
}

// flushUnary writes a buffered unary answer.
func (o *forwardWriter) flushUnary() {
	body := []byte(o.redact(o.buf.String()))
	o.usage, o.usageSeen = usageOf(body, o.usage, false)
	body = withModel(body, o.model)
	o.w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	o.w.WriteHeader(o.status)
	_, o.err = o.w.Write(body)
}

// observe reads usage from one event and reports whether to drop it.
func (o *forwardWriter) observe(ev []byte) bool {
	data := sseData(ev)
	if len(data) == 0 || data[0] != '{' {
		return false
	}
	o.usage, o.usageSeen = usageOf(data, o.usage, o.usageSeen)
	if o.hideUsage {
		var c struct {
			Choices []json.RawMessage `json:"choices"`
			Usage   json.RawMessage   `json:"usage"`
		}
		if json.Unmarshal(data, &c) == nil && len(c.Choices) == 0 && len(c.Usage) > 0 && string(c.Usage) != "null" {
			return true
		}
	}
	return false
}

// rewriteEvent reports the agent's model name in an event that names
// the provider's; other events pass as they are.
func (o *forwardWriter) rewriteEvent(ev []byte) []byte {
	data := sseData(ev)
	if !bytes.Contains(data, []byte(`"model"`)) {
		return ev
	}
	nd := withModel(data, o.model)
	if bytes.Equal(nd, data) {
		return ev
	}
	var out []byte
	for _, line := range bytes.Split(ev, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimRight(line, "\r"), []byte("data:")) {
			out = append(append(out, line...), '\n')
		}
	}
	return append(append(out, "data: "...), nd...)
}

// withModel sets the model of an answer object (top level, or in
// Anthropic's message_start "message" / Responses' "response").
func withModel(data []byte, model string) []byte {
	var m map[string]json.RawMessage
	if model == "" || json.Unmarshal(data, &m) != nil {
		return data
	}
	name, _ := json.Marshal(model)
	changed := false
	if _, ok := m["model"]; ok {
		m["model"], changed = name, true
	}
	for _, k := range []string{"message", "response"} {
		var inner map[string]json.RawMessage
		if raw, ok := m[k]; ok && json.Unmarshal(raw, &inner) == nil {
			if _, ok := inner["model"]; ok {
				inner["model"] = name
				m[k], _ = json.Marshal(inner)
				changed = true
			}
		}
	}
	if !changed {
		return data
	}
	out, err := json.Marshal(m)
	if err != nil {
		return data
	}
	return out
}

// cutEvent splits the first complete SSE event (ended by a blank line)
// off b.
func cutEvent(b []byte) (ev, rest []byte, ok bool) {
	for i := 0; i+1 < len(b); i++ {
		if b[i] != '\n' {
			continue
		}
		switch {
		case b[i+1] == '\n':
			return bytes.TrimRight(b[:i], "\r"), b[i+2:], true
		case b[i+1] == '\r' && i+2 < len(b) && b[i+2] == '\n':
			return bytes.TrimRight(b[:i], "\r"), b[i+3:], true
		}
	}
	return nil, b, false
}

// sseData joins an event's data lines.
func sseData(ev []byte) []byte {
	var out []byte
	for _, line := range bytes.Split(ev, []byte("\n")) {
		line = bytes.TrimRight(line, "\r")
		if d, ok := bytes.CutPrefix(line, []byte("data:")); ok {
			if len(out) > 0 {
				out = append(out, '\n')
			}
			out = append(out, bytes.TrimPrefix(d, []byte(" "))...)
		}
	}
	return out
}

// wireUsage is the union of the usage shapes: OpenAI chat
// (prompt/completion), OpenAI Responses and Anthropic (input/output).
type wireUsage struct {
	PromptTokens        *int64 `json:"prompt_tokens"`
	CompletionTokens    *int64 `json:"completion_tokens"`
	PromptTokensDetails *struct {
		CachedTokens int64 `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
	InputTokens        *int64 `json:"input_tokens"`
	OutputTokens       *int64 `json:"output_tokens"`
	InputTokensDetails *struct {
		CachedTokens int64 `json:"cached_tokens"`
	} `json:"input_tokens_details"`
	CacheRead     int64 `json:"cache_read_input_tokens"`
	CacheCreation int64 `json:"cache_creation_input_tokens"`
}

// usageOf folds the usage an answer or event reports into u. Anthropic
// streams report input in message_start and output in message_delta, so
// fields only overwrite what they carry. Anthropic's input_tokens exclude
// cached tokens; the neutral count includes them.
func usageOf(data []byte, u llm.Usage, seen bool) (llm.Usage, bool) {
	var env struct {
		Usage    *wireUsage                  `json:"usage"`
		Message  *struct{ Usage *wireUsage } `json:"message"`
		Response *struct{ Usage *wireUsage } `json:"response"`
	}
	if json.Unmarshal(data, &env) != nil {
		return u, seen
	}
	w := env.Usage
	if w == nil && env.Message != nil {
		w = env.Message.Usage
	}
	if w == nil && env.Response != nil {
		w = env.Response.Usage
	}
	if w == nil {
		return u, seen
	}
	switch {
	case w.PromptTokens != nil || w.CompletionTokens != nil:
		if w.PromptTokens != nil {
			u.InputTokens = *w.PromptTokens
		}
		if w.CompletionTokens != nil {
			u.OutputTokens = *w.CompletionTokens
		}
		if w.PromptTokensDetails != nil {
			u.CachedInputTokens = w.PromptTokensDetails.CachedTokens
		}
	case w.InputTokensDetails != nil:
		// OpenAI Responses: input includes cached.
		if w.InputTokens != nil {
			u.InputTokens = *w.InputTokens
		}
		if w.OutputTokens != nil {
			u.OutputTokens = *w.OutputTokens
		}
		u.CachedInputTokens = w.InputTokensDetails.CachedTokens
	default:
		if w.InputTokens != nil {
			u.InputTokens = *w.InputTokens + w.CacheRead + w.CacheCreation
			u.CachedInputTokens = w.CacheRead
		}
		if w.OutputTokens != nil {
			u.OutputTokens = *w.OutputTokens
		}
	}
	return u, true
}

// agentMessage is an error's text without repeated class prefixes: an
// error that crossed the plugin boundary carries "unavailable: " once in
// its message and once more from its class.
func agentMessage(err error) string {
	var se *status.Error
	msg := err.Error()
	if errors.As(err, &se) {
		msg = se.Message
	}
	for {
		trimmed := false
		for c := status.Unknown; c <= status.Internal; c++ {
			if rest, ok := strings.CutPrefix(msg, c.String()+": "); ok {
				msg, trimmed = rest, true
			}
		}
		if !trimmed {
			return msg
		}
	}
}
