package inference

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/nemoclave/nemoclave/internal/wire/openai"
	"github.com/nemoclave/nemoclave/internal/wire/sse"
	"github.com/nemoclave/nemoclave/sdk/llm"
)

// readBody reads a bounded request body; a too-large body is an error the
// dialect reports.
func (r *Router) readBody(w http.ResponseWriter, req *http.Request) ([]byte, error) {
	body := http.MaxBytesReader(w, req.Body, r.maxBody)
	if n := req.ContentLength; n > 0 && n <= r.maxBody {
		// One allocation of the announced size (+1 so that reading to EOF
		// does not grow it); the limit still holds whatever is sent.
		buf := bytes.NewBuffer(make([]byte, 0, n+1))
		_, err := buf.ReadFrom(body)
		return buf.Bytes(), err
	}
	return io.ReadAll(body)
}

func (r *Router) serveOpenAIChat(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	d := openaiDialect{created: start.Unix()}
	body, err := r.readBody(w, req)
	if err != nil {
		d.writeError(w, http.StatusRequestEntityTooLarge, "request body too large or unreadable: "+err.Error(), "")
		r.metrics.request(r.sandbox, d.endpoint(), http.StatusRequestEntityTooLarge)
		return
	}
	top, err := decodeObject(body)
	if err != nil {
		d.writeError(w, http.StatusBadRequest, "request body is not a valid chat completion request: "+err.Error(), "invalid_request")
		r.metrics.request(r.sandbox, d.endpoint(), http.StatusBadRequest)
		return
	}
	// The body is decoded for translation, but an OpenAI-dialect provider
	// gets it as it is; a body the gateway cannot translate (a content
	// part type it does not model) fails only on a translating route.
	c := &chatCall{w: w, d: d, start: start, raw: newRawCall(llm.DialectOpenAI, "/chat/completions", req, body)}
	c.raw.top = top
	c.req, c.stream, c.includeUsage, c.decodeErr = openai.DecodeChatRequestObject(body, top)
	if c.req != nil {
		// The same struct decode peekFields does, already done.
		c.requested = c.req.Model
	} else {
		c.requested, c.stream, c.includeUsage = peekFields(body)
	}
	r.serveChat(req.Context(), c)
}

// openaiDialect answers in the Chat Completions shape.
type openaiDialect struct{ created int64 }

func (openaiDialect) endpoint() string { return "openai_chat" }

func (openaiDialect) writeError(w http.ResponseWriter, httpStatus int, msg, code string) {
	_, body := openai.ErrorFor(httpStatus, msg, code)
	writeJSON(w, httpStatus, body)
}

func (d openaiDialect) writeResponse(w http.ResponseWriter, resp *llm.ChatResponse, model string) {
	writeJSON(w, http.StatusOK, openai.EncodeResponse(resp, model, d.created))
}

func (d openaiDialect) newStream(w http.ResponseWriter, id, model string, includeUsage bool) streamEncoder {
	startStream(w)
	return &openaiStream{sw: sse.NewWriter(w), enc: openai.ChunkEncoder{ID: id, Model: model, Created: d.created, IncludeUsage: includeUsage}}
}

func (openaiDialect) streamError(w http.ResponseWriter, httpStatus int, msg string) {
	(&openaiStream{sw: sse.NewWriter(w)}).fail(httpStatus, msg)
}

func startStream(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
}

type openaiStream struct {
	sw  *sse.Writer
	enc openai.ChunkEncoder
}

func (s *openaiStream) chunk(c *llm.ChatChunk) error {
	for _, wc := range s.enc.Encode(c) {
		b, err := json.Marshal(wc)
		if err != nil {
			return err
		}
		if err := s.sw.Write("", b); err != nil {
			return err
		}
	}
	return nil
}

func (s *openaiStream) finish() error { return s.sw.Write("", []byte("[DONE]")) }

// fail sends an error object as a data event, which OpenAI clients raise.
func (s *openaiStream) fail(httpStatus int, msg string) {
	_, body := openai.ErrorFor(httpStatus, msg, "")
	b, _ := json.Marshal(body)
	_ = s.sw.Write("", b)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":{"message":"gateway could not encode its response","type":"api_error"}}`, http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// decodeObject decodes a request body's top level, which every stage
// that reads the body as it is (pass-through, its limits) shares.
func decodeObject(body []byte) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, err
	}
	if m == nil {
		// json.Unmarshal takes null for an empty map; a pass-through
		// route would then have no object to set the model in.
		return nil, errors.New("the body is null, not a JSON object")
	}
	return m, nil
}
