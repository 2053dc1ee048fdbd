package inference

import (
	"net/http"
	"time"

	"github.com/nemoclave/nemoclave/internal/wire/openai"
	"github.com/nemoclave/nemoclave/internal/wire/responses"
	"github.com/nemoclave/nemoclave/internal/wire/sse"
	"github.com/nemoclave/nemoclave/sdk/llm"
)

// serveResponses serves POST /v1/responses (the OpenAI Responses API,
// which Codex speaks) by translating it to a neutral chat call, so every
// provider can answer it. A previous_response_id continues a stored
// response's conversation.
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
	wreq, creq, err := responses.DecodeRequest(body)
	if err != nil {
		fail(http.StatusBadRequest, err.Error(), "invalid_request")
		return
	}
	input, inputSystem, _ := responses.DecodeInput(wreq.Input)
	var history []llm.Message
	if wreq.PreviousResponseID != "" {
		prev, ok := r.responses.get(wreq.PreviousResponseID, r.now())
		if !ok {
			fail(http.StatusNotFound, "previous_response_id "+wreq.PreviousResponseID+" is not stored in this sandbox: "+storeHint, "previous_response_not_found")
			return
		}
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
	d.resp = responses.NewResponse(newID("resp_"), wreq.Model, start.Unix(), wreq)
	d.store = wreq.Store == nil || *wreq.Store
	r.serveChat(req.Context(), &chatCall{w: w, d: d, req: creq, requested: wreq.Model, stream: wreq.Stream, includeUsage: true, start: start})
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
