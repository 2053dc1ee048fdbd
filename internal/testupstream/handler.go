package testupstream

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"

	"github.com/nemoclave/nemoclave/internal/wire/anthropic"
	"github.com/nemoclave/nemoclave/internal/wire/openai"
	"github.com/nemoclave/nemoclave/internal/wire/responses"
	"github.com/nemoclave/nemoclave/internal/wire/sse"
	"github.com/nemoclave/nemoclave/sdk/llm"
)

// Options configures the stand-in.
type Options struct {
	// Key is the only API key accepted (Bearer for OpenAI, x-api-key for
	// Anthropic). Empty accepts any.
	Key string
	// ReplyBytes pads plain answers to about this many bytes (0: none).
	ReplyBytes int
	// Script, when set, answers the requests that offer one of its tools
	// (see Script).
	Script *Script
}

// Models the stand-in serves. The model name picks the behaviour:
//
//	fail-429   answer 429 (rate limited)
//	fail-500   answer 500
//	fail-400   answer 400
//	leak-key   answer 500 with the received API key in the message, as
//	           a careless provider might, to test redaction
//	stall      stream the first chunk of the answer, then hang until
//	           the client goes away (a provider stuck mid-stream)
//	anything   answer: a tool call to the first tool when tools are
//	           offered and no tool result follows the last user message;
//	           otherwise "echo: <last user text>" (or "tool said: <result>")
var Models = []string{"gpt-test", "claude-test", "fail-429", "fail-500", "fail-400", "leak-key", "stall"}

// stalled hangs a "stall" stream once its first chunk's events are out, until the
// client goes away; it reports whether it did.
func stalled(r *http.Request, model string) bool {
	if model != "stall" {
		return false
	}
	<-r.Context().Done()
	return true
}

// Handler serves both wire formats.
func Handler(o Options) http.Handler {
	s := &server{o: o}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", s.openaiChat)
	mux.HandleFunc("POST /v1/messages", s.anthropicMessages)
	mux.HandleFunc("POST /v1/responses", s.openaiResponses)
	mux.HandleFunc("GET /v1/responses/{id}", s.storedResponse)
	mux.HandleFunc("DELETE /v1/responses/{id}", s.storedResponse)
	mux.HandleFunc("GET /v1/models", s.models)
	mux.HandleFunc("POST /v1/embeddings", s.embeddings)
	mux.HandleFunc("POST /v1/messages/count_tokens", s.countTokens)
	mux.HandleFunc("GET /_last_headers", s.lastHeaders)
	mux.HandleFunc("GET /_last_request", s.lastRequest)
	mux.HandleFunc("GET /_requests", s.requests)
	return mux
}

type server struct {
	o    Options
	mu   sync.Mutex
	last http.Header
	req  Recorded
	seen []Seen
	// stored are the conversations of the Responses API answers given
	// with store (the default), by response id, for previous_response_id.
	stored map[string][]llm.Message
	// storedResp are those answers as the API returns them, for
	// GET and DELETE /v1/responses/{id}.
	storedResp map[string][]byte
	nresp      int
}

// note records a model request for GET /_requests.
func (s *server) note(r *http.Request, req *llm.ChatRequest, stream bool, answer string) {
	n := Seen{Path: r.URL.Path, Stream: stream, Answer: answer, Authorised: answer != "error:401"}
	if req != nil {
		n.Model = req.Model
		for _, t := range req.Tools {
			n.Tools = append(n.Tools, t.Name)
		}
		for _, m := range req.Messages {
			if m.Role == llm.RoleTool {
				n.ToolResult, n.ToolOutput = true, m.Text()
			}
		}
		if len(n.ToolOutput) > 2000 {
			n.ToolOutput = n.ToolOutput[:2000]
		}
	}
	s.mu.Lock()
	s.seen = append(s.seen, n)
	s.mu.Unlock()
}

func (s *server) requests(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = json.NewEncoder(w).Encode(append([]Seen{}, s.seen...))
}

// answered names an answer for Seen.Answer.
func answered(resp *llm.ChatResponse) string {
	if len(resp.Message.ToolCalls) > 0 {
		return "tool:" + resp.Message.ToolCalls[0].Name
	}
	return "text"
}

// Recorded is the last model request as it arrived, for tests that check
// what a gateway passed through (GET /_last_request).
type Recorded struct {
	Method  string          `json:"method"`
	Path    string          `json:"path"`
	Query   string          `json:"query"`
	Headers http.Header     `json:"headers"`
	Body    json.RawMessage `json:"body"`
}

// remember records r's headers and body and leaves the body readable.
func (s *server) remember(r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	rec := Recorded{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Headers: r.Header.Clone()}
	if json.Valid(body) {
		rec.Body = body
	}
	s.mu.Lock()
	s.last, s.req = r.Header.Clone(), rec
	s.mu.Unlock()
}

func (s *server) lastRequest(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = json.NewEncoder(w).Encode(s.req)
}

// countTokens answers POST /v1/messages/count_tokens with one token per
// word of the request's text.
func (s *server) countTokens(w http.ResponseWriter, r *http.Request) {
	s.remember(r)
	if !s.authorised(w, r, true) {
		return
	}
	body, _ := io.ReadAll(r.Body)
	req, _, err := anthropic.DecodeRequest(body)
	if err != nil {
		s.fail(w, true, 400, err.Error())
		return
	}
	n := len(strings.Fields(req.System))
	for _, m := range req.Messages {
		n += len(strings.Fields(m.Text()))
	}
	writeJSON(w, 200, map[string]int{"input_tokens": n})
}

// lastHeaders reports the headers of the last model request, so tests can
// check what the plugin sent (and that an agent's headers did not arrive).
func (s *server) lastHeaders(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = json.NewEncoder(w).Encode(s.last)
}

func (s *server) models(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("x-api-key") != "" || r.Header.Get("anthropic-version") != "" {
		if !s.authorised(w, r, true) {
			return
		}
		var out anthropic.ModelList
		for _, m := range Models {
			out.Data = append(out.Data, anthropic.ModelInfo{ID: m, Type: "model", DisplayName: m, CreatedAt: "2026-01-01T00:00:00Z"})
		}
		writeJSON(w, 200, out)
		return
	}
	if !s.authorised(w, r, false) {
		return
	}
	out := openai.ModelList{Object: "list"}
	for _, m := range Models {
		out.Data = append(out.Data, openai.Model{ID: m, Object: "model", Created: 1767225600, OwnedBy: "testupstream"})
	}
	writeJSON(w, 200, out)
}

func (s *server) authorised(w http.ResponseWriter, r *http.Request, anth bool) bool {
	got := r.Header.Get("x-api-key")
	if !anth {
		got = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	}
	if s.o.Key == "" || got == s.o.Key {
		return true
	}
	s.fail(w, anth, 401, "invalid api key")
	return false
}

func (s *server) fail(w http.ResponseWriter, anth bool, code int, msg string) {
	if anth {
		writeJSON(w, code, anthropic.ErrorFor(code, msg))
		return
	}
	_, body := openai.ErrorFor(code, msg, "")
	writeJSON(w, code, body)
}

// failure answers the fail-* and leak-key models; it reports whether it did.
func (s *server) failure(w http.ResponseWriter, r *http.Request, anth bool, model string) bool {
	switch model {
	case "fail-429":
		s.fail(w, anth, 429, "rate limit reached for requests")
	case "fail-500":
		s.fail(w, anth, 500, "the server had an error while processing your request")
	case "fail-400":
		s.fail(w, anth, 400, "invalid request: bad parameter")
	case "leak-key":
		key := r.Header.Get("x-api-key") + strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		s.fail(w, anth, 500, "internal error while serving key "+key)
	default:
		return false
	}
	return true
}

func (s *server) openaiChat(w http.ResponseWriter, r *http.Request) {
	s.remember(r)
	if !s.authorised(w, r, false) {
		s.note(r, nil, false, "error:401")
		return
	}
	body, _ := io.ReadAll(r.Body)
	req, stream, _, err := openai.DecodeChatRequest(body)
	if err != nil {
		s.note(r, nil, false, "error:400")
		s.fail(w, false, 400, err.Error())
		return
	}
	if s.failure(w, r, false, req.Model) {
		s.note(r, req, stream, "error:"+req.Model)
		return
	}
	resp := s.answer(req)
	s.note(r, req, stream, answered(resp))
	if !stream {
		writeJSON(w, 200, openai.EncodeResponse(resp, req.Model, 1767225600))
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	sw := sse.NewWriter(w)
	enc := openai.ChunkEncoder{ID: resp.ID, Model: req.Model, Created: 1767225600, IncludeUsage: true}
	for _, c := range chunksOf(resp) {
		for _, wc := range enc.Encode(c) {
			b, _ := json.Marshal(wc)
			_ = sw.Write("", b)
		}
		if stalled(r, req.Model) {
			return
		}
	}
	_ = sw.Write("", []byte("[DONE]"))
}

// openaiResponses answers POST /v1/responses as the OpenAI Responses API
// does: the response object, or with stream the event sequence; a
// stored response's conversation continues through previous_response_id.
func (s *server) openaiResponses(w http.ResponseWriter, r *http.Request) {
	s.remember(r)
	if !s.authorised(w, r, false) {
		s.note(r, nil, false, "error:401")
		return
	}
	body, _ := io.ReadAll(r.Body)
	wreq, req, err := responses.DecodeRequest(body)
	if err != nil {
		s.note(r, nil, false, "error:400")
		s.fail(w, false, 400, err.Error())
		return
	}
	if s.failure(w, r, false, req.Model) {
		s.note(r, req, wreq.Stream, "error:"+req.Model)
		return
	}
	input, _, _ := responses.DecodeInput(wreq.Input)
	s.mu.Lock()
	s.nresp++
	id := fmt.Sprintf("resp_upstream%d", s.nresp)
	history, known := s.stored[wreq.PreviousResponseID]
	s.mu.Unlock()
	if wreq.PreviousResponseID != "" {
		if !known {
			s.note(r, req, wreq.Stream, "error:404")
			_, eb := openai.ErrorFor(404, "Previous response with id '"+wreq.PreviousResponseID+"' not found.", "previous_response_not_found")
			writeJSON(w, 404, eb)
			return
		}
		req.Messages = append(append([]llm.Message(nil), history...), req.Messages...)
	}
	resp := s.answer(req)
	s.note(r, req, wreq.Stream, answered(resp))
	out := responses.NewResponse(id, req.Model, 1767225600, wreq)
	n := 0
	itemID := func(prefix string) string { n++; return fmt.Sprintf("%s%s_%d", prefix, id, n) }
	keep := func() {
		if wreq.Store == nil || *wreq.Store {
			conv := append(append(append([]llm.Message(nil), history...), input...), responses.MessagesOf(out.Output)...)
			s.mu.Lock()
			if s.stored == nil {
				s.stored = map[string][]llm.Message{}
				s.storedResp = map[string][]byte{}
			}
			s.stored[id] = conv
			s.storedResp[id], _ = json.Marshal(out)
			s.mu.Unlock()
		}
	}
	if !wreq.Stream {
		responses.Complete(out, resp, itemID)
		keep()
		writeJSON(w, 200, out)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	sw := sse.NewWriter(w)
	enc := responses.StreamEncoder{Response: out, ItemID: itemID}
	for _, c := range chunksOf(resp) {
		for _, ev := range enc.Encode(c) {
			_ = sw.Write(ev.Name, ev.Data)
		}
		if stalled(r, req.Model) {
			return
		}
	}
	for _, ev := range enc.Finish() {
		_ = sw.Write(ev.Name, ev.Data)
	}
	keep()
}

// storedResponse answers GET and DELETE /v1/responses/{id} for a
// response kept with store, as the API does: the response object, or the
// deletion's confirmation; 404 in the OpenAI error shape otherwise.
func (s *server) storedResponse(w http.ResponseWriter, r *http.Request) {
	s.remember(r)
	if !s.authorised(w, r, false) {
		s.note(r, nil, false, "error:401")
		return
	}
	id := r.PathValue("id")
	s.mu.Lock()
	body, ok := s.storedResp[id]
	if ok && r.Method == http.MethodDelete {
		delete(s.storedResp, id)
		delete(s.stored, id)
	}
	s.mu.Unlock()
	if !ok {
		s.note(r, nil, false, "error:404")
		_, eb := openai.ErrorFor(404, "Response with id '"+id+"' not found.", "not_found")
		writeJSON(w, 404, eb)
		return
	}
	s.note(r, nil, false, strings.ToLower(r.Method))
	if r.Method == http.MethodDelete {
		writeJSON(w, 200, responses.Deleted{ID: id, Object: "response", Deleted: true})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

func (s *server) anthropicMessages(w http.ResponseWriter, r *http.Request) {
	s.remember(r)
	if !s.authorised(w, r, true) {
		s.note(r, nil, false, "error:401")
		return
	}
	if r.Header.Get("anthropic-version") == "" {
		s.note(r, nil, false, "error:400")
		s.fail(w, true, 400, "anthropic-version header is required")
		return
	}
	body, _ := io.ReadAll(r.Body)
	req, stream, err := anthropic.DecodeRequest(body)
	if err != nil {
		s.note(r, nil, false, "error:400")
		s.fail(w, true, 400, err.Error())
		return
	}
	if s.failure(w, r, true, req.Model) {
		s.note(r, req, stream, "error:"+req.Model)
		return
	}
	resp := s.answer(req)
	s.note(r, req, stream, answered(resp))
	if !stream {
		writeJSON(w, 200, anthropic.EncodeResponse(resp, req.Model))
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	sw := sse.NewWriter(w)
	enc := anthropic.StreamEncoder{ID: resp.ID, Model: req.Model}
	for _, c := range chunksOf(resp) {
		for _, ev := range enc.Encode(c) {
			_ = sw.Write(ev.Name, ev.Data)
		}
		if stalled(r, req.Model) {
			return
		}
	}
	for _, ev := range enc.Finish() {
		_ = sw.Write(ev.Name, ev.Data)
	}
}

// embeddings answers with a deterministic unit vector per input (8
// dimensions unless the request asks for others), derived from its hash.
func (s *server) embeddings(w http.ResponseWriter, r *http.Request) {
	s.remember(r)
	if !s.authorised(w, r, false) {
		return
	}
	var req struct {
		Model      string   `json:"model"`
		Input      []string `json:"input"`
		Dimensions int      `json:"dimensions"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		s.fail(w, false, 400, "input must be an array of strings: "+err.Error())
		return
	}
	if s.failure(w, r, false, req.Model) {
		return
	}
	dims := req.Dimensions
	if dims <= 0 {
		dims = 8
	}
	out := openai.EmbeddingsResponse{Object: "list", Model: req.Model, Data: []openai.Embedding{}}
	for i, in := range req.Input {
		out.Data = append(out.Data, openai.Embedding{Object: "embedding", Index: i, Embedding: hashVector(in, dims)})
		out.Usage.PromptTokens += int64(len(strings.Fields(in)))
	}
	out.Usage.TotalTokens = out.Usage.PromptTokens
	writeJSON(w, 200, out)
}

func hashVector(text string, dims int) []float32 {
	v := make([]float32, dims)
	var norm float64
	for i := range v {
		sum := sha256.Sum256([]byte(fmt.Sprintf("%d/%s", i, text)))
		v[i] = float32(int(sum[0])-128) / 128
		norm += float64(v[i]) * float64(v[i])
	}
	n := float32(math.Sqrt(norm))
	if n == 0 {
		n = 1
	}
	for i := range v {
		v[i] /= n
	}
	return v
}

// answer is the deterministic reply to req.
func (s *server) answer(req *llm.ChatRequest) *llm.ChatResponse {
	if s.o.Script != nil {
		if resp, ok := s.o.Script.scripted(req); ok {
			resp.Usage = llm.Usage{InputTokens: 10, OutputTokens: int64(len(strings.Fields(resp.Message.Text())) + 2*len(resp.Message.ToolCalls))}
			return resp
		}
	}
	var lastUser, lastTool string
	toolAfterUser := false
	words := int64(len(strings.Fields(req.System)))
	for _, m := range req.Messages {
		words += int64(len(strings.Fields(m.Text())))
		switch m.Role {
		case llm.RoleUser:
			lastUser, toolAfterUser = m.Text(), false
		case llm.RoleTool:
			lastTool, toolAfterUser = m.Text(), true
		}
	}
	resp := &llm.ChatResponse{ID: "resp-test-1", Model: req.Model, Message: llm.Message{Role: llm.RoleAssistant}, FinishReason: llm.FinishStop}
	switch {
	case len(req.Tools) > 0 && !toolAfterUser && req.ToolChoice != "none":
		args, _ := json.Marshal(map[string]string{"q": lastUser})
		resp.Message.ToolCalls = []llm.ToolCall{{ID: "call_1", Name: req.Tools[0].Name, Arguments: string(args)}}
		resp.FinishReason = llm.FinishToolCalls
	case toolAfterUser:
		resp.Message.Content = []llm.ContentPart{llm.Text("tool said: " + lastTool)}
	default:
		text := "echo: " + lastUser
		if pad := s.o.ReplyBytes - len(text); pad > 0 {
			text += strings.Repeat(" lorem", pad/6+1)[:pad]
		}
		resp.Message.Content = []llm.ContentPart{llm.Text(text)}
	}
	if words == 0 {
		words = 1
	}
	resp.Usage = llm.Usage{InputTokens: words, OutputTokens: int64(len(strings.Fields(resp.Message.Text())) + 2*len(resp.Message.ToolCalls))}
	return resp
}

// chunksOf splits an answer into stream chunks: text a few words at a
// time, each tool call's arguments in two pieces, then finish and usage.
func chunksOf(r *llm.ChatResponse) []*llm.ChatChunk {
	var out []*llm.ChatChunk
	words := strings.SplitAfter(r.Message.Text(), " ")
	for i := 0; i < len(words); i += 4 {
		end := min(i+4, len(words))
		if t := strings.Join(words[i:end], ""); t != "" {
			out = append(out, &llm.ChatChunk{ID: r.ID, Model: r.Model, DeltaText: t})
		}
	}
	for i, tc := range r.Message.ToolCalls {
		half := len(tc.Arguments) / 2
		out = append(out,
			&llm.ChatChunk{ID: r.ID, Model: r.Model, ToolCalls: []llm.ToolCallDelta{{Index: i, ID: tc.ID, Name: tc.Name, ArgumentsDelta: tc.Arguments[:half]}}},
			&llm.ChatChunk{ID: r.ID, Model: r.Model, ToolCalls: []llm.ToolCallDelta{{Index: i, ArgumentsDelta: tc.Arguments[half:]}}})
	}
	u := r.Usage
	return append(out, &llm.ChatChunk{ID: r.ID, Model: r.Model, FinishReason: r.FinishReason, Usage: &u})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		fmt.Println("testupstream: write:", err)
	}
}
