package inference

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
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
	// top is body's top level when the endpoint decoded it already (nil:
	// decode it when needed). It is shared: readers copy before changing.
	top map[string]json.RawMessage
}

// object is the body's top level.
func (rc *rawCall) object() (map[string]json.RawMessage, error) {
	if rc.top != nil {
		return rc.top, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(rc.body, &m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("the body is null, not a JSON object")
	}
	return m, nil
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
	top, err := c.raw.object()
	if err != nil {
		return nil, status.Errorf(status.InvalidArgument, "request body must be a JSON object: %v", err)
	}
	m := make(map[string]json.RawMessage, len(top)+4)
	maps.Copy(m, top)
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
	modelJSON []byte
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
	o.modelJSON = modelName(o.model)
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

// data takes one chunk from the plugin. A stream's complete events are
// written and flushed together: the plugin sends in one chunk the events
// that were already waiting, so they reach the agent as soon as they
// arrived, with one write to the connection instead of one per event.
func (o *forwardWriter) data(b []byte) error {
	o.n += len(b)
	o.buf.Write(b)
	if !o.stream {
		return nil
	}
	wrote := false
	for {
		all := o.buf.Bytes()
		ev, rest, ok := cutEvent(all)
		if !ok {
			break
		}
		// ev points into the buffer, which does not change until Next.
		w, err := o.event(ev)
		o.buf.Next(len(all) - len(rest))
		wrote = wrote || w
		if err != nil {
			o.err = err
			return err
		}
	}
	if wrote {
		if f, ok := o.w.(http.Flusher); ok {
			f.Flush()
		}
	}
	return nil
}

var eventEnd = []byte("\n\n")

// event writes one stream event unless it is the usage-only chunk the
// agent did not ask for, reading its usage and reporting the agent's
// model name where the event names the provider's.
func (o *forwardWriter) event(ev []byte) (bool, error) {
	data := sseData(ev)
	if len(data) > 0 && (data[0] == '{' || bytes.Contains(data, []byte(`"model"`))) {
		a := scanAnswer(data)
		if data[0] == '{' {
			o.usage, o.usageSeen = a.foldUsage(o.usage, o.usageSeen)
			if o.hideUsage && a.usageOnly() {
				return false, nil
			}
		}
		if bytes.Contains(data, []byte(`"model"`)) {
			ev = withEventData(ev, data, a.withModel(data, o.modelJSON))
		}
	}
	if _, err := io.WriteString(o.w, o.redact(string(ev))); err != nil {
		return true, err
	}
	_, err := o.w.Write(eventEnd)
	return true, err
}

// flushUnary writes a buffered unary answer.
func (o *forwardWriter) flushUnary() {
	body := []byte(o.redact(o.buf.String()))
	a := scanAnswer(body)
	o.usage, o.usageSeen = a.foldUsage(o.usage, false)
	body = a.withModel(body, modelName(o.model))
	o.w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	o.w.WriteHeader(o.status)
	_, o.err = o.w.Write(body)
}

// withEventData is ev with its data lines replaced by nd, or ev itself
// when nd is its data unchanged.
func withEventData(ev, data, nd []byte) []byte {
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

// sseData joins an event's data lines. An event of one data line (all
// that providers send) is returned in place, without a copy.
func sseData(ev []byte) []byte {
	var (
		out   []byte
		one   []byte
		lines int
	)
	for len(ev) > 0 {
		line := ev
		if i := bytes.IndexByte(ev, '\n'); i >= 0 {
			line, ev = ev[:i], ev[i+1:]
		} else {
			ev = nil
		}
		line = bytes.TrimRight(line, "\r")
		d, ok := bytes.CutPrefix(line, []byte("data:"))
		if !ok {
			continue
		}
		d = bytes.TrimPrefix(d, []byte(" "))
		lines++
		switch lines {
		case 1:
			one = d
			continue
		case 2:
			out = append(out, one...)
		}
		out = append(append(out, '\n'), d...)
	}
	if lines == 1 {
		return one
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
