package inference

import (
	"encoding/json"
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
	return io.ReadAll(http.MaxBytesReader(w, req.Body, r.maxBody))
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
	creq, stream, includeUsage, err := openai.DecodeChatRequest(body)
	if err != nil {
		d.writeError(w, http.StatusBadRequest, err.Error(), "invalid_request")
		r.metrics.request(r.sandbox, d.endpoint(), http.StatusBadRequest)
		return
	}
	r.serveChat(req.Context(), &chatCall{w: w, d: d, req: creq, requested: creq.Model, stream: stream, includeUsage: includeUsage, start: start})
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

// serveModels lists the sandbox's aliases, in the Anthropic shape when
// the caller sends anthropic-version, else the OpenAI shape.
func (r *Router) serveModels(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	routes := r.state.Load().routes
	names := routes.aliases()
	for _, a := range keys(routes.Embeddings) {
		if _, dup := routes.Models[a]; !dup {
			names = append(names, a)
		}
	}
	r.setOverhead(w, time.Since(start), "models")
	if req.Header.Get("anthropic-version") != "" {
		out := struct {
			Data    []any  `json:"data"`
			HasMore bool   `json:"has_more"`
			FirstID string `json:"first_id,omitempty"`
			LastID  string `json:"last_id,omitempty"`
		}{Data: []any{}}
		for _, n := range names {
			out.Data = append(out.Data, map[string]string{"id": n, "type": "model", "display_name": n, "created_at": "2026-01-01T00:00:00Z"})
		}
		if len(names) > 0 {
			out.FirstID, out.LastID = names[0], names[len(names)-1]
		}
		writeJSON(w, http.StatusOK, out)
		r.metrics.request(r.sandbox, "models", http.StatusOK)
		return
	}
	out := openai.ModelList{Object: "list", Data: []openai.Model{}}
	for _, n := range names {
		out.Data = append(out.Data, openai.Model{ID: n, Object: "model", Created: 1767225600, OwnedBy: "nemoclave"})
	}
	writeJSON(w, http.StatusOK, out)
	r.metrics.request(r.sandbox, "models", http.StatusOK)
}
