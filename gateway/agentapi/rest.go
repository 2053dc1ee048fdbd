package agentapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/nemoclave/nemoclave/sdk/retrieval"
	"github.com/nemoclave/nemoclave/sdk/status"
)

func (h *Handler) routeREST() {
	h.mux.HandleFunc("POST /v1/memory", h.rememberREST)
	h.mux.HandleFunc("GET /v1/memory", h.listMemoryREST)
	h.mux.HandleFunc("POST /v1/memory/recall", h.recallREST)
	h.mux.HandleFunc("POST /v1/memory/forget", h.forgetREST)
	h.mux.HandleFunc("DELETE /v1/memory/{id}", h.forgetOneREST)
	h.mux.HandleFunc("GET /v1/retrieval/collections", h.collectionsREST)
	h.mux.HandleFunc("POST /v1/retrieval/collections", h.createCollectionREST)
	h.mux.HandleFunc("POST /v1/retrieval/collections/{name}/documents", h.upsertREST)
	h.mux.HandleFunc("POST /v1/retrieval/collections/{name}/query", h.queryREST)
	h.mux.HandleFunc("POST /v1/retrieval/collections/{name}/delete", h.deleteDocsREST)
}

// call runs op with auditing and writes its result or error.
func (h *Handler) call(w http.ResponseWriter, kind, name string, ok int, op func() (any, error)) {
	start := time.Now()
	v, err := op()
	h.audit(kind, name, "", start, err)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, ok, v)
}

func (h *Handler) needMemory(w http.ResponseWriter) bool {
	if h.cfg.Memory == nil {
		writeError(w, status.Errorf(status.NotSupported, "this agent has no memory plugin; set `memory = plugin.memory.<name>` on the agent in the blueprint"))
		return false
	}
	return true
}

func (h *Handler) needRetrieval(w http.ResponseWriter) bool {
	if h.cfg.Retrieval == nil {
		writeError(w, status.Errorf(status.NotSupported, "this agent has no retrieval plugin; set `retrieval = plugin.retrieval.<name>` on the agent in the blueprint"))
		return false
	}
	return true
}

func (h *Handler) rememberREST(w http.ResponseWriter, r *http.Request) {
	if !h.needMemory(w) {
		return
	}
	var req struct {
		Text     string         `json:"text"`
		Metadata map[string]any `json:"metadata"`
		Session  string         `json:"session"`
	}
	h.call(w, "memory", "remember", http.StatusCreated, func() (any, error) {
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		m, err := h.cfg.Memory.Remember(r.Context(), h.scope(req.Session), req.Text, req.Metadata)
		return toMemoryJSON(m, nil), err
	})
}

func (h *Handler) listMemoryREST(w http.ResponseWriter, r *http.Request) {
	if !h.needMemory(w) {
		return
	}
	q := r.URL.Query()
	limit, _ := strconv.Atoi(q.Get("limit"))
	h.call(w, "memory", "list", http.StatusOK, func() (any, error) {
		page, err := h.cfg.Memory.List(r.Context(), h.scope(q.Get("session")), limit, q.Get("page_token"))
		if err != nil {
			return nil, err
		}
		out := struct {
			Memories      []memoryJSON `json:"memories"`
			NextPageToken string       `json:"next_page_token,omitempty"`
		}{Memories: []memoryJSON{}, NextPageToken: page.NextPageToken}
		for _, m := range page.Memories {
			out.Memories = append(out.Memories, toMemoryJSON(m, nil))
		}
		return out, nil
	})
}

func (h *Handler) recallREST(w http.ResponseWriter, r *http.Request) {
	if !h.needMemory(w) {
		return
	}
	var req struct {
		Query    string  `json:"query"`
		Limit    int     `json:"limit"`
		MinScore float64 `json:"min_score"`
		Session  string  `json:"session"`
	}
	h.call(w, "memory", "recall", http.StatusOK, func() (any, error) {
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		got, err := h.cfg.Memory.Recall(r.Context(), h.scope(req.Session), req.Query, req.Limit, req.MinScore)
		if err != nil {
			return nil, err
		}
		out := struct {
			Memories []memoryJSON `json:"memories"`
		}{Memories: []memoryJSON{}}
		for _, s := range got {
			score := s.Score
			out.Memories = append(out.Memories, toMemoryJSON(s.Memory, &score))
		}
		return out, nil
	})
}

func (h *Handler) forgetREST(w http.ResponseWriter, r *http.Request) {
	if !h.needMemory(w) {
		return
	}
	var req struct {
		IDs     []string `json:"ids"`
		All     bool     `json:"all"`
		Session string   `json:"session"`
	}
	h.call(w, "memory", "forget", http.StatusOK, func() (any, error) {
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		n, err := h.cfg.Memory.Forget(r.Context(), h.scope(req.Session), req.IDs, req.All)
		return map[string]int{"forgotten": n}, err
	})
}

func (h *Handler) forgetOneREST(w http.ResponseWriter, r *http.Request) {
	if !h.needMemory(w) {
		return
	}
	h.call(w, "memory", "forget", http.StatusOK, func() (any, error) {
		n, err := h.cfg.Memory.Forget(r.Context(), h.scope(r.URL.Query().Get("session")), []string{r.PathValue("id")}, false)
		return map[string]int{"forgotten": n}, err
	})
}

func (h *Handler) collectionsREST(w http.ResponseWriter, r *http.Request) {
	if !h.needRetrieval(w) {
		return
	}
	h.call(w, "retrieval", "collections", http.StatusOK, func() (any, error) {
		cs, err := h.cfg.Retrieval.ListCollections(r.Context())
		if err != nil {
			return nil, err
		}
		type col struct {
			Name       string `json:"name"`
			Dimensions int    `json:"dimensions"`
			Count      int64  `json:"count"`
		}
		out := struct {
			Collections []col `json:"collections"`
		}{Collections: []col{}}
		for _, c := range cs {
			out.Collections = append(out.Collections, col{c.Name, c.Dimensions, c.Count})
		}
		return out, nil
	})
}

func (h *Handler) createCollectionREST(w http.ResponseWriter, r *http.Request) {
	if !h.needRetrieval(w) {
		return
	}
	var req struct {
		Name       string `json:"name"`
		Dimensions int    `json:"dimensions"`
	}
	h.call(w, "retrieval", "create_collection", http.StatusCreated, func() (any, error) {
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		c, err := h.cfg.Retrieval.CreateCollection(r.Context(), req.Name, req.Dimensions)
		return map[string]any{"name": c.Name, "dimensions": c.Dimensions, "count": c.Count}, err
	})
}

func (h *Handler) upsertREST(w http.ResponseWriter, r *http.Request) {
	if !h.needRetrieval(w) {
		return
	}
	var req struct {
		Documents []documentJSON `json:"documents"`
	}
	h.call(w, "retrieval", "upsert", http.StatusOK, func() (any, error) {
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		docs := make([]retrieval.Document, len(req.Documents))
		for i, d := range req.Documents {
			docs[i] = retrieval.Document{ID: d.ID, Text: d.Text, Vector: d.Vector, Metadata: d.Metadata}
		}
		n, err := h.cfg.Retrieval.Upsert(r.Context(), r.PathValue("name"), docs)
		return map[string]int{"upserted": n}, err
	})
}

func (h *Handler) queryREST(w http.ResponseWriter, r *http.Request) {
	if !h.needRetrieval(w) {
		return
	}
	var req struct {
		Text           string       `json:"text"`
		Vector         []float32    `json:"vector"`
		TopK           int          `json:"top_k"`
		Filters        []filterJSON `json:"filters"`
		IncludeVectors bool         `json:"include_vectors"`
	}
	h.call(w, "retrieval", "query", http.StatusOK, func() (any, error) {
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		matches, err := h.cfg.Retrieval.Query(r.Context(), &retrieval.QueryRequest{
			Collection: r.PathValue("name"), Text: req.Text, Vector: req.Vector, TopK: req.TopK,
			Filters: toFilters(req.Filters), IncludeVectors: req.IncludeVectors,
		})
		if err != nil {
			return nil, err
		}
		out := struct {
			Matches []documentJSON `json:"matches"`
		}{Matches: []documentJSON{}}
		for _, m := range matches {
			score := m.Score
			out.Matches = append(out.Matches, documentJSON{ID: m.Document.ID, Text: m.Document.Text, Vector: m.Document.Vector, Metadata: m.Document.Metadata, Score: &score})
		}
		return out, nil
	})
}

func (h *Handler) deleteDocsREST(w http.ResponseWriter, r *http.Request) {
	if !h.needRetrieval(w) {
		return
	}
	var req struct {
		IDs     []string     `json:"ids"`
		Filters []filterJSON `json:"filters"`
	}
	h.call(w, "retrieval", "delete", http.StatusOK, func() (any, error) {
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		n, err := h.cfg.Retrieval.Delete(r.Context(), &retrieval.DeleteRequest{Collection: r.PathValue("name"), IDs: req.IDs, Filters: toFilters(req.Filters)})
		return map[string]int{"deleted": n}, err
	})
}
