package inference

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/nemoclave/nemoclave/internal/wire/anthropic"
	"github.com/nemoclave/nemoclave/internal/wire/openai"
)

// anthropicCaller reports whether a request comes from an Anthropic
// client, which expects Anthropic-shaped model objects and errors.
func anthropicCaller(req *http.Request) bool {
	return req.Header.Get("anthropic-version") != "" || strings.HasPrefix(req.URL.Path, "/v1/messages")
}

// serveModels lists the sandbox's chat model aliases (embeddings aliases
// are not chat models: agents pick from this list), in the Anthropic
// shape when the caller sends anthropic-version, else the OpenAI shape.
func (r *Router) serveModels(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	names := r.state.Load().routes.aliases()
	r.setOverhead(w, time.Since(start), "models")
	if anthropicCaller(req) {
		out := anthropic.ModelList{Data: []anthropic.ModelInfo{}}
		for _, n := range names {
			out.Data = append(out.Data, anthropicModel(n))
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
		out.Data = append(out.Data, openaiModel(n))
	}
	writeJSON(w, http.StatusOK, out)
	r.metrics.request(r.sandbox, "models", http.StatusOK)
}

// serveModel answers GET /v1/models/{id} for an alias or a route's
// provider model name (agents ask for the model they were configured
// with), reporting the name asked for.
func (r *Router) serveModel(w http.ResponseWriter, req *http.Request) {
	id := req.PathValue("id")
	routes := r.state.Load().routes
	_, known := routes.Models[id]
	for _, a := range routes.aliases() {
		known = known || routes.Models[a].Model == id
	}
	if !known {
		msg := fmt.Sprintf("model %q is not available in this sandbox; use one of: %s", id, strings.Join(routes.aliases(), ", "))
		if anthropicCaller(req) {
			anthropicDialect{}.writeError(w, http.StatusNotFound, msg, "")
		} else {
			openaiDialect{}.writeError(w, http.StatusNotFound, msg, "model_not_found")
		}
		r.metrics.request(r.sandbox, "models", http.StatusNotFound)
		return
	}
	if anthropicCaller(req) {
		writeJSON(w, http.StatusOK, anthropicModel(id))
	} else {
		writeJSON(w, http.StatusOK, openaiModel(id))
	}
	r.metrics.request(r.sandbox, "models", http.StatusOK)
}

func anthropicModel(id string) anthropic.ModelInfo {
	return anthropic.ModelInfo{ID: id, Type: "model", DisplayName: id, CreatedAt: "2026-01-01T00:00:00Z"}
}

func openaiModel(id string) openai.Model {
	return openai.Model{ID: id, Object: "model", Created: 1767225600, OwnedBy: "nemoclave"}
}

// notFound answers an unknown path in the caller's dialect.
func (r *Router) notFound(w http.ResponseWriter, req *http.Request) {
	msg := fmt.Sprintf("%s %s is not an inference endpoint: the gateway serves POST /v1/chat/completions, POST /v1/responses, GET|DELETE /v1/responses/{id}, POST /v1/embeddings, GET /v1/models[/{id}], POST /v1/messages and POST /v1/messages/count_tokens", req.Method, req.URL.Path)
	if anthropicCaller(req) {
		anthropicDialect{}.writeError(w, http.StatusNotFound, msg, "")
	} else {
		openaiDialect{}.writeError(w, http.StatusNotFound, msg, "not_found")
	}
	r.metrics.request(r.sandbox, "unknown", http.StatusNotFound)
}
