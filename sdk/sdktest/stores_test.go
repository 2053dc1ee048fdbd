package sdktest_test

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/nemoclave/nemoclave/sdk/memory"
	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/retrieval"
	"github.com/nemoclave/nemoclave/sdk/status"
)

// memRetrieval is an in-memory vector store: cosine similarity, filters
// by retrieval.MatchFilters, text embedded with hashEmbed.
type memRetrieval struct {
	plugin.Base
	broken string

	mu   sync.Mutex
	cols map[string]*collection
}

type collection struct {
	dims int
	docs map[string]retrieval.Document
}

func (*memRetrieval) Info() plugin.Info {
	return plugin.Info{Name: "retrieval-mem", Version: "0.1.0", Kinds: []plugin.Kind{plugin.KindRetrieval}}
}

func (s *memRetrieval) col(name string) (*collection, error) {
	c, ok := s.cols[name]
	if !ok {
		return nil, status.Errorf(status.NotFound, "no collection %q; create it first", name)
	}
	return c, nil
}

func (s *memRetrieval) ListCollections(context.Context) ([]retrieval.Collection, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []retrieval.Collection
	for name, c := range s.cols {
		out = append(out, retrieval.Collection{Name: name, Dimensions: c.dims, Count: int64(len(c.docs))})
	}
	return out, nil
}

func (s *memRetrieval) CreateCollection(_ context.Context, name string, dims int) (retrieval.Collection, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if dims == 0 {
		dims = hashDims
	}
	if c, ok := s.cols[name]; ok {
		if c.dims != dims {
			return retrieval.Collection{}, status.Errorf(status.InvalidArgument, "collection %q exists with %d dimensions, not %d", name, c.dims, dims)
		}
		return retrieval.Collection{Name: name, Dimensions: dims, Count: int64(len(c.docs))}, nil
	}
	if s.cols == nil {
		s.cols = map[string]*collection{}
	}
	s.cols[name] = &collection{dims: dims, docs: map[string]retrieval.Document{}}
	return retrieval.Collection{Name: name, Dimensions: dims}, nil
}

func (s *memRetrieval) DeleteCollection(_ context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.col(name); err != nil {
		return err
	}
	delete(s.cols, name)
	return nil
}

func (s *memRetrieval) Upsert(_ context.Context, name string, docs []retrieval.Document) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.col(name)
	if err != nil {
		return 0, err
	}
	for _, d := range docs {
		if len(d.Vector) == 0 {
			d.Vector = hashEmbed(d.Text)
		}
		if len(d.Vector) != c.dims {
			return 0, status.Errorf(status.InvalidArgument, "document %q has %d dimensions, collection %q %d", d.ID, len(d.Vector), name, c.dims)
		}
		c.docs[d.ID] = d
	}
	return len(docs), nil
}

func (s *memRetrieval) Query(_ context.Context, r *retrieval.QueryRequest) ([]retrieval.Match, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.col(r.Collection)
	if err != nil {
		return nil, err
	}
	vec := r.Vector
	switch {
	case len(vec) == 0 && r.Text == "":
		return nil, status.Errorf(status.InvalidArgument, "query needs a text or a vector")
	case len(vec) == 0:
		vec = hashEmbed(r.Text)
	}
	if len(vec) != c.dims {
		return nil, status.Errorf(status.InvalidArgument, "query vector has %d dimensions, collection %d", len(vec), c.dims)
	}
	filters := r.Filters
	if s.broken == "ignores-filters" {
		filters = nil
	}
	var out []retrieval.Match
	for _, d := range c.docs {
		ok, err := retrieval.MatchFilters(d.Metadata, filters)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		m := retrieval.Match{Document: d, Score: cosine(vec, d.Vector)}
		if !r.IncludeVectors {
			m.Document.Vector = nil
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Score > out[j].Score })
	k := r.TopK
	if k <= 0 {
		k = 10
	}
	return out[:min(k, len(out))], nil
}

func (s *memRetrieval) Delete(_ context.Context, r *retrieval.DeleteRequest) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.col(r.Collection)
	if err != nil {
		return 0, err
	}
	if len(r.IDs) == 0 && len(r.Filters) == 0 {
		return 0, status.Errorf(status.InvalidArgument, "delete needs ids or filters")
	}
	n := 0
	for _, id := range r.IDs {
		if _, ok := c.docs[id]; ok {
			delete(c.docs, id)
			n++
		}
	}
	if len(r.Filters) > 0 {
		for id, d := range c.docs {
			ok, err := retrieval.MatchFilters(d.Metadata, r.Filters)
			if err != nil {
				return n, err
			}
			if ok {
				delete(c.docs, id)
				n++
			}
		}
	}
	return n, nil
}

// memMemory is an in-memory memory store scoring by hashEmbed cosine.
type memMemory struct {
	plugin.Base
	broken string

	mu    sync.Mutex
	seq   int
	items []memory.Memory
}

func (*memMemory) Info() plugin.Info {
	return plugin.Info{Name: "memory-mem", Version: "0.1.0", Kinds: []plugin.Kind{plugin.KindMemory}}
}

func (s *memMemory) sees(reader, m memory.Scope) bool {
	if s.broken == "leaks-users" {
		return reader.Agent == m.Agent
	}
	return reader.Sees(m)
}

func (s *memMemory) Remember(_ context.Context, sc memory.Scope, text string, md map[string]any) (memory.Memory, error) {
	if text == "" {
		return memory.Memory{}, status.Errorf(status.InvalidArgument, "nothing to remember: text is empty")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	m := memory.Memory{ID: "mem-" + strconv.Itoa(s.seq), Scope: sc, Text: text, Metadata: md, CreatedAt: time.Now()}
	s.items = append(s.items, m)
	return m, nil
}

func (s *memMemory) Recall(_ context.Context, sc memory.Scope, query string, limit int, minScore float64) ([]memory.Scored, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := hashEmbed(query)
	var out []memory.Scored
	for _, m := range s.items {
		if !s.sees(sc, m.Scope) {
			continue
		}
		if score := cosine(q, hashEmbed(m.Text)); score >= minScore {
			out = append(out, memory.Scored{Memory: m, Score: score})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Score > out[j].Score })
	if limit <= 0 {
		limit = 10
	}
	return out[:min(limit, len(out))], nil
}

// List pages newest first; the token is the offset.
func (s *memMemory) List(_ context.Context, sc memory.Scope, limit int, token string) (memory.Page, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	off := 0
	if token != "" {
		var err error
		if off, err = strconv.Atoi(token); err != nil || off < 0 {
			return memory.Page{}, status.Errorf(status.InvalidArgument, "page token %q is not one List returned", token)
		}
	}
	if limit <= 0 {
		limit = 50
	}
	var visible []memory.Memory
	for i := len(s.items) - 1; i >= 0; i-- {
		if s.sees(sc, s.items[i].Scope) {
			visible = append(visible, s.items[i])
		}
	}
	page := memory.Page{}
	if off < len(visible) {
		page.Memories = visible[off:min(off+limit, len(visible))]
	}
	if off+limit < len(visible) {
		page.NextPageToken = fmt.Sprint(off + limit)
	}
	return page, nil
}

func (s *memMemory) Forget(_ context.Context, sc memory.Scope, ids []string, all bool) (int, error) {
	if len(ids) == 0 && !all {
		return 0, status.Errorf(status.InvalidArgument, "forget needs ids or all")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	drop := map[string]bool{}
	for _, id := range ids {
		drop[id] = true
	}
	kept := s.items[:0]
	n := 0
	for _, m := range s.items {
		if sc.Owns(m.Scope) && (all || drop[m.ID]) {
			n++
			continue
		}
		kept = append(kept, m)
	}
	s.items = kept
	return n, nil
}
