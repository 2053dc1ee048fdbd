package inference

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/nemoclave/nemoclave/internal/wire/openai"
	"github.com/nemoclave/nemoclave/internal/wire/responses"
	"github.com/nemoclave/nemoclave/internal/wire/sse"
	"github.com/nemoclave/nemoclave/sdk/llm"
	"github.com/nemoclave/nemoclave/sdk/status"
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
	top, err := decodeObject(body)
	if err != nil {
		fail(http.StatusBadRequest, "request body is not a valid Responses request: "+err.Error(), "invalid_request")
		return
	}
	c := &chatCall{w: w, d: d, start: start, includeUsage: true, raw: newRawCall(llm.DialectOpenAI, "/responses", req, body)}
	c.raw.top = top
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

// serveGetResponse serves GET /v1/responses/{id}: a response the
// gateway stored (translated routes, or a conversation it continued), or
// else one a provider that speaks the Responses API stored itself.
func (r *Router) serveGetResponse(w http.ResponseWriter, req *http.Request) {
	id := req.PathValue("id")
	st, ok := r.responses.get(id, r.now())
	if !ok {
		if r.providerResponse(w, req, id) {
			return
		}
		openaiDialect{}.writeError(w, http.StatusNotFound, "response "+id+" is not stored in this sandbox: "+storeHint, "not_found")
		r.metrics.request(r.sandbox, "openai_responses", http.StatusNotFound)
		return
	}
	writeJSON(w, http.StatusOK, st.resp)
	r.metrics.request(r.sandbox, "openai_responses", http.StatusOK)
}

// serveDeleteResponse serves DELETE /v1/responses/{id}, of the
// gateway's store or else of the provider's (as GET).
func (r *Router) serveDeleteResponse(w http.ResponseWriter, req *http.Request) {
	id := req.PathValue("id")
	if !r.responses.delete(id) {
		if r.providerResponse(w, req, id) {
			return
		}
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

// providerResponse passes GET or DELETE /v1/responses/{id} (with its
// query, e.g. include[] or stream=true) to the providers that speak the
// Responses API natively, where a native route's response with store
// true lives. Each provider of the routes is asked once, the default
// alias's chain first and then the other aliases in name order; a 404
// (or a provider that does not forward the Responses API) moves on to
// the next. It reports false when no provider had the response.
func (r *Router) providerResponse(w http.ResponseWriter, req *http.Request, id string) bool {
	st := r.state.Load()
	var steps []step
	if chain, err := st.routes.chain(""); err == nil {
		steps = append(steps, chain...)
	}
	aliases := make([]string, 0, len(st.routes.Models))
	for a := range st.routes.Models {
		aliases = append(aliases, a)
	}
	sort.Strings(aliases)
	for _, a := range aliases {
		steps = append(steps, step{a, st.routes.Models[a]})
	}
	asked := map[string]bool{}
	rc := &rawCall{dialect: llm.DialectOpenAI, path: "/responses/" + url.PathEscape(id), query: req.URL.RawQuery, headers: map[string]string{}}
	for _, h := range forwardedRequestHeaders {
		if v := req.Header.Values(h); len(v) > 0 {
			rc.headers[h] = strings.Join(v, ",")
		}
	}
	stream := req.URL.Query().Get("stream") == "true"
	for _, s := range steps {
		if asked[s.route.Provider] {
			continue
		}
		asked[s.route.Provider] = true
		prov := st.providers[s.route.Provider]
		f, ok := prov.(llm.Forwarder)
		// The Responses API, not this id's path, is what a provider
		// speaks or not.
		if !ok || prov == nil {
			continue
		}
		if _, no := r.noForward.m.Load(r.noForward.key(prov, &rawCall{dialect: llm.DialectOpenAI, path: "/responses"})); no {
			continue
		}
		if r.forwardStored(w, req, f, prov, s, rc, stream) {
			return true
		}
	}
	return false
}

// forwardStored asks one provider; false means it does not have the
// response (404, or it does not speak the Responses API).
func (r *Router) forwardStored(w http.ResponseWriter, req *http.Request, f llm.Forwarder, prov llm.Provider, s step, rc *rawCall, stream bool) bool {
	ctx, cancel := s.route.callContext(req.Context())
	defer cancel()
	if !stream {
		var c2 context.CancelFunc
		ctx, c2 = context.WithTimeout(ctx, s.route.timeout())
		defer c2()
	}
	out := &forwardWriter{w: w, stream: stream, redact: r.redact}
	first := false
	err := f.Forward(ctx, &llm.ForwardRequest{Dialect: rc.dialect, Method: req.Method, Path: rc.path, Query: rc.query, Headers: rc.headers, Stream: stream},
		func(ch *llm.ForwardChunk) error {
			if !first {
				first = true
				w.Header().Set(RouteHeader, s.alias+" "+s.route.Provider)
				return out.begin(ch)
			}
			return out.data(ch.Data)
		})
	if !first {
		switch status.CodeOf(err) {
		case status.NotFound:
			return false
		case status.NotSupported:
			r.noForward.m.Store(r.noForward.key(prov, &rawCall{dialect: llm.DialectOpenAI, path: "/responses"}), true)
			return false
		}
		if err == nil {
			err = status.Errorf(status.Unavailable, "%s sent an empty answer", s.route.Provider)
		}
		code := httpStatusOf(status.CodeOf(err))
		openaiDialect{}.writeError(w, code, r.redact(fmt.Sprintf("%s %s at provider %s: %s", req.Method, req.URL.Path, s.route.Provider, agentMessage(err))), "")
		r.metrics.request(r.sandbox, "openai_responses", code)
		return true
	}
	if !stream {
		if err == nil {
			// The answer names the provider's model; report the alias, as
			// the POST that created it did.
			if m := responseModel(out.buf.Bytes()); m == s.route.Model {
				out.model = s.alias
			}
			out.flushUnary()
		} else {
			code := httpStatusOf(status.CodeOf(err))
			openaiDialect{}.writeError(w, code, r.redact(agentMessage(err)), "")
			out.status = code
		}
	} else if err != nil && req.Context().Err() == nil {
		(&responsesDialect{r: r, resp: responses.NewResponse(rc.path[len("/responses/"):], "", r.now().Unix(), nil)}).streamError(w, httpStatusOf(status.CodeOf(err)), "the provider failed mid-stream: "+r.redact(agentMessage(err)))
	}
	r.metrics.request(r.sandbox, "openai_responses", out.status)
	return true
}

// responseModel reads the top-level model of a Responses object.
func responseModel(body []byte) string {
	var m struct {
		Model string `json:"model"`
	}
	_ = json.Unmarshal(body, &m)
	return m.Model
}
