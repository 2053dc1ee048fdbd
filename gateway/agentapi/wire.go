package agentapi

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/nemoclave/nemoclave/sdk/memory"
	"github.com/nemoclave/nemoclave/sdk/retrieval"
	"github.com/nemoclave/nemoclave/sdk/status"
)

// The REST shapes, snake_case like the rest of the gateway.

type memoryJSON struct {
	ID        string         `json:"id"`
	Session   string         `json:"session,omitempty"`
	Text      string         `json:"text"`
	Metadata  map[string]any `json:"metadata,omitempty"`
	CreatedAt time.Time      `json:"created_at"`
	Score     *float64       `json:"score,omitempty"`
}

func toMemoryJSON(m memory.Memory, score *float64) memoryJSON {
	return memoryJSON{ID: m.ID, Session: m.Scope.Session, Text: m.Text, Metadata: m.Metadata, CreatedAt: m.CreatedAt, Score: score}
}

type filterJSON struct {
	Field string `json:"field"`
	Op    string `json:"op"`
	Value any    `json:"value,omitempty"`
}

func toFilters(in []filterJSON) []retrieval.Filter {
	out := make([]retrieval.Filter, len(in))
	for i, f := range in {
		out[i] = retrieval.Filter{Field: f.Field, Op: retrieval.Op(f.Op), Value: f.Value}
	}
	return out
}

type documentJSON struct {
	ID       string         `json:"id"`
	Text     string         `json:"text,omitempty"`
	Vector   []float32      `json:"vector,omitempty"`
	Metadata map[string]any `json:"metadata,omitempty"`
	Score    *float64       `json:"score,omitempty"`
}

// maxBody bounds a request body: documents are ingested in batches.
const maxBody = 16 << 20

func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return status.Errorf(status.InvalidArgument, "request body: %v (see docs/agents.md for the API shapes)", err)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

var httpCodes = map[status.Code]int{
	status.NotSupported:     http.StatusNotImplemented,
	status.InvalidArgument:  http.StatusBadRequest,
	status.NotFound:         http.StatusNotFound,
	status.Unauthenticated:  http.StatusBadGateway, // the plugin's credential, not the agent's
	status.PermissionDenied: http.StatusForbidden,
	status.RateLimited:      http.StatusTooManyRequests,
	status.Unavailable:      http.StatusServiceUnavailable,
	status.DeadlineExceeded: http.StatusGatewayTimeout,
}

func writeError(w http.ResponseWriter, err error) {
	code, ok := httpCodes[status.CodeOf(err)]
	if !ok {
		code = http.StatusInternalServerError
	}
	var se *status.Error
	msg := err.Error()
	if errors.As(err, &se) {
		msg = se.Message
	}
	writeJSON(w, code, map[string]any{"error": map[string]any{"code": status.CodeOf(err).String(), "message": msg}})
}
