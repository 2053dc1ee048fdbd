package inference

import (
	"errors"
	"net/http"
	"time"

	"github.com/nemoclave/nemoclave/internal/wire/openai"
	"github.com/nemoclave/nemoclave/internal/wire/responses"
	"github.com/nemoclave/nemoclave/internal/wire/sse"
	"github.com/nemoclave/nemoclave/sdk/llm"
)

// serveResponses serves POST /v1/responses (the OpenAI Responses API,
// which Codex speaks). A provider that speaks the API itself (llm-openai
// with responses_api) gets the request as it is, like a same-dialect chat
// completion; every other provider gets it translated to a neutral chat
// call. A previous_response_id the gateway stored continues that
// conversation by translation; one it did not store can only be a
// provider's own, so only a forwarding route may answer it.
func (r *Router) serveResponses(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	d := &responsesDialect{r: r}
	fail := func(code int, msg, errCode string) {
		d.writeError(w, code, r.redact(msg), errCode)
		r.metrics.request(r.sandbox, d.endpoint(), code)
	}
	body, err := r.readBody(w, req)
	if err != nil {
		fail(http.StatusRequestEntityTooLarge, "request body too large or unreadable: "+err.Error(), "")
		return
	}
	if err := jsonObjectError(body); err != nil {
		fail(http.StatusBadRequest, "request body is not a valid Responses request: "+err.Error(), "invalid_request")
		return
	}
	c := &chatCall{w: w, d: d, start: start, includeUsage: true, raw: newRawCall(llm.DialectOpenAI, "/responses", req, body)}
	c.requested, c.stream, _ = peekFields(body)
	d.resp = responses.NewResponse(newID("resp_"), c.requested, start.Unix(), nil)
	wreq, creq, err := responses.DecodeRequest(body)
	if err != nil {
		// A forwarding route takes what the translation does not model
		// (other item and tool types); translating routes refuse it.
		c.decodeErr = err
		r.serveChat(req.Context(), c)
		return
	}
	input, inputSystem, _ := responses.DecodeInput(wreq.Input)
	var history []llm.Message
	if wreq.PreviousResponseID != "" {
		prev, ok := r.responses.get(wreq.PreviousResponseID, r.now())
		if !ok {
			c.decodeErr = errors.New("previous_response_id " + wreq.PreviousResponseID + " is not stored in this sandbox: " + storeHint)
			c.decodeStatus, c.decodeCode = http.StatusNotFound, "previous_response_not_found"
			r.serveChat(req.Context(), c)
			return
		}
		// The gateway holds this conversation: no provider knows its id.
		c.raw = nil
		history = prev.history
		creq.Messages = append(append([]llm.Message(nil), history...), creq.Messages...)
	}
	// The conversation a later previous_response_id continues: earlier
	// turns, this input (its system items, not its instructions, which
	// the API applies to one response only) and, once known, the output.
	for _, s := range inputSystem {
		history = append(history, llm.Message{Role: llm.RoleSystem, Content: []llm.ContentPart{llm.Text(s)}})
	}
	d.history = append(history, input...)
	d.resp = responses.NewResponse(d.resp.ID, wreq.Model, start.Unix(), wreq)
	d.store = wreq.Store == nil || *wreq.Store
	c.req = creq
	r.serveChat(req.Context(), c)
}

// serveGetResponse serves GET /v1/responses/{id}.
func (r *Router) serveGetResponse(w http.ResponseWriter, req *http.Request) {
	id := req.PathValue("id")
	st, ok := r.responses.get(id, r.now())
	if !ok {
		openaiDialect{}.writeError(w, http.StatusNotFound, "response "+id+" is not stored in this sandbox: "+storeHint, "not_found")
		r.metrics.request(r.sandbox, "openai_responses", http.StatusNotFound)
		return
	}
	writeJSON(w, http.StatusOK, st.resp)
	r.metrics.request(r.sandbox, "openai_responses", http.StatusOK)
}

// serveDeleteResponse serves DELETE /v1/responses/{id}.
func (r *Router) serveDeleteResponse(w http.ResponseWriter, req *http.Request) {
	id := req.PathValue("id")
	if !r.responses.delete(id) {
		openaiDialect{}.writeError(w, http.StatusNotFound, "response "+id+" is not stored in this sandbox: "+storeHint, "not_found")
		r.metrics.request(r.sandbox, "openai_responses", http.StatusNotFound)
		return
	}
	writeJSON(w, http.StatusOK, responses.Deleted{ID: id, Object: "response.deleted", Deleted: true})
	r.metrics.request(r.sandbox, "openai_responses", http.StatusOK)
}

// responsesDialect answers one Responses call and stores the result.
type responsesDialect struct {
	r       *Router
	resp    *responses.Response
	history []llm.Message
	store   bool
	seq     int
}

func (*responsesDialect) endpoint() string { return "openai_responses" }

func (*responsesDialect) writeError(w http.ResponseWriter, httpStatus int, msg, code string) {
	openaiDialect{}.writeError(w, httpStatus, msg, code)
}

func (d *responsesDialect) itemID(prefix string) string {
	d.seq++
	return prefix + d.resp.ID[len("resp_"):] + "_" + itoa(d.seq)
}

func (d *responsesDialect) writeResponse(w http.ResponseWriter, resp *llm.ChatResponse, model string) {
	d.resp.Model = model
	responses.Complete(d.resp, resp, d.itemID)
	d.keep()
	writeJSON(w, http.StatusOK, d.resp)
}

// keep stores the finished response when the agent did not opt out.
func (d *responsesDialect) keep() {
	if !d.store {
		return
	}
	hist := append(append([]llm.Message(nil), d.history...), responses.MessagesOf(d.resp.Output)...)
	d.r.responses.put(d.resp, hist, d.r.now())
}

func (d *responsesDialect) newStream(w http.ResponseWriter, _, model string, _ bool) streamEncoder {
	startStream(w)
	d.resp.Model = model
	return &responsesStream{d: d, sw: sse.NewWriter(w), enc: responses.StreamEncoder{Response: d.resp, ItemID: d.itemID}}
}

func (d *responsesDialect) streamError(w http.ResponseWriter, httpStatus int, msg string) {
	(&responsesStream{d: d, sw: sse.NewWriter(w), enc: responses.StreamEncoder{Response: d.resp, ItemID: d.itemID}}).fail(httpStatus, msg)
}

type responsesStream struct {
	d   *responsesDialect
	sw  *sse.Writer
	enc responses.StreamEncoder
}

func (s *responsesStream) write(evs []responses.Event) error {
	for _, ev := range evs {
		if err := s.sw.Write(ev.Name, ev.Data); err != nil {
			return err
		}
	}
	return nil
}

func (s *responsesStream) chunk(c *llm.ChatChunk) error { return s.write(s.enc.Encode(c)) }

func (s *responsesStream) finish() error {
	err := s.write(s.enc.Finish())
	s.d.keep()
	return err
}

func (s *responsesStream) fail(httpStatus int, msg string) {
	_, body := openai.ErrorFor(httpStatus, msg, "")
	_ = s.write(s.enc.Fail(body.Error.Type, msg))
}
