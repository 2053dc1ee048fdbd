package inference

import (
	"container/list"
	"strconv"
	"sync"
	"time"

	"github.com/nemoclave/nemoclave/internal/wire/responses"
	"github.com/nemoclave/nemoclave/sdk/llm"
)

// Stored responses are bounded per sandbox (count) and expire, because
// the store is gateway memory an agent could otherwise grow without end.
const (
	responseStoreMax = 256
	responseStoreTTL = time.Hour
)

const storeHint = "responses are kept for 1h, the most recent 256 per sandbox, unless the request set store: false; send the whole conversation in input instead"

// storedResponse is one response and the conversation up to and
// including it.
type storedResponse struct {
	id      string
	resp    *responses.Response
	history []llm.Message
	expires time.Time
}

// responseStore is a sandbox's stored responses, oldest evicted first.
type responseStore struct {
	mu    sync.Mutex
	byID  map[string]*list.Element
	order *list.List // of *storedResponse, oldest at the front
}

func (s *responseStore) put(resp *responses.Response, history []llm.Message, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byID == nil {
		s.byID, s.order = map[string]*list.Element{}, list.New()
	}
	if el, ok := s.byID[resp.ID]; ok {
		s.order.Remove(el)
	}
	s.byID[resp.ID] = s.order.PushBack(&storedResponse{id: resp.ID, resp: resp, history: history, expires: now.Add(responseStoreTTL)})
	for s.order.Len() > responseStoreMax {
		s.evict(s.order.Front())
	}
}

func (s *responseStore) evict(el *list.Element) {
	delete(s.byID, el.Value.(*storedResponse).id)
	s.order.Remove(el)
}

func (s *responseStore) get(id string, now time.Time) (*storedResponse, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Expired entries are at the front (insertion order, one TTL).
	for s.order != nil && s.order.Len() > 0 && !now.Before(s.order.Front().Value.(*storedResponse).expires) {
		s.evict(s.order.Front())
	}
	el, ok := s.byID[id]
	if !ok {
		return nil, false
	}
	return el.Value.(*storedResponse), true
}

func (s *responseStore) delete(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.byID[id]
	if ok {
		s.evict(el)
	}
	return ok
}

func itoa(n int) string { return strconv.Itoa(n) }
