package inference

import (
	"net/http"
	"time"

	"github.com/nemoclave/nemoclave/internal/wire/anthropic"
	"github.com/nemoclave/nemoclave/internal/wire/sse"
	"github.com/nemoclave/nemoclave/sdk/llm"
)

func (r *Router) serveAnthropicMessages(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	d := anthropicDialect{}
	body, err := r.readBody(w, req)
	if err != nil {
		d.writeError(w, http.StatusRequestEntityTooLarge, "request body too large or unreadable: "+err.Error(), "")
		r.metrics.request(r.sandbox, d.endpoint(), http.StatusRequestEntityTooLarge)
		return
	}
	top, err := decodeObject(body)
	if err != nil {
		d.writeError(w, http.StatusBadRequest, "request body is not a valid messages request: "+err.Error(), "")
		r.metrics.request(r.sandbox, d.endpoint(), http.StatusBadRequest)
		return
	}
	// An Anthropic-dialect provider gets the body as it is (cache_control,
	// thinking, beta fields, the agent's anthropic-version/-beta headers
	// and ?beta=true); other providers get the translation.
	c := &chatCall{w: w, d: d, start: start, raw: newRawCall(llm.DialectAnthropic, "/messages", req, body)}
	c.raw.top = top
	c.requested, c.stream, _ = peekFields(body)
	c.req, _, c.decodeErr = anthropic.DecodeRequest(body)
	r.serveChat(req.Context(), c)
}

// anthropicDialect answers in the Messages shape.
type anthropicDialect struct{}

func (anthropicDialect) endpoint() string { return "anthropic_messages" }

func (anthropicDialect) writeError(w http.ResponseWriter, httpStatus int, msg, _ string) {
	writeJSON(w, httpStatus, anthropic.ErrorFor(httpStatus, msg))
}

func (anthropicDialect) writeResponse(w http.ResponseWriter, resp *llm.ChatResponse, model string) {
	if resp.ID != "" && resp.ID[0] != 'm' {
		resp.ID = "msg_" + resp.ID
	}
	writeJSON(w, http.StatusOK, anthropic.EncodeResponse(resp, model))
}

func (anthropicDialect) newStream(w http.ResponseWriter, id, model string, _ bool) streamEncoder {
	startStream(w)
	return &anthropicStream{sw: sse.NewWriter(w), enc: anthropic.StreamEncoder{ID: "msg_" + id, Model: model}}
}

type anthropicStream struct {
	sw  *sse.Writer
	enc anthropic.StreamEncoder
}

func (s *anthropicStream) write(evs []anthropic.Event) error {
	for _, ev := range evs {
		if err := s.sw.Write(ev.Name, ev.Data); err != nil {
			return err
		}
	}
	return nil
}

func (s *anthropicStream) chunk(c *llm.ChatChunk) error { return s.write(s.enc.Encode(c)) }
func (s *anthropicStream) finish() error                { return s.write(s.enc.Finish()) }

func (anthropicDialect) streamError(w http.ResponseWriter, httpStatus int, msg string) {
	ev := anthropic.ErrorEvent(httpStatus, msg)
	_ = sse.NewWriter(w).Write(ev.Name, ev.Data)
}

func (s *anthropicStream) fail(httpStatus int, msg string) {
	ev := anthropic.ErrorEvent(httpStatus, msg)
	_ = s.sw.Write(ev.Name, ev.Data)
}
