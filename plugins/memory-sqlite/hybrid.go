package main

import (
	"container/heap"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"unicode"

	"github.com/nemoclave/nemoclave/internal/vecdot"
	"github.com/nemoclave/nemoclave/sdk/memory"
	"github.com/nemoclave/nemoclave/sdk/status"
)

const (
	defaultRecallLimit = 10
	maxRecallLimit     = 1000
	backfillBatch      = 64
)

// scopeKey groups vectors the way Scope.Sees partitions memories: a reader
// only ever sees its own agent and user.
type scopeKey struct{ agent, user string }

type vecEntry struct {
	rowid   int64
	session string
	vec     []float32 // unit length
	// The int8 copy for the scan's first pass (internal/vecdot's
	// Quantize8); nil when len(vec) is not a multiple of 16.
	q8 []int8
	qb vecdot.Q8
}

// vectorIndex holds the unit vectors of every embedded memory, grouped by
// (agent, user), so a recall scans only the caller's memories and never
// reads vectors from disk, and the owner of every memory, embedded or not,
// so full-text hits are filtered by scope without reading their rows. It
// mirrors the database: entries are added after their insert commits and
// removed after their delete commits.
type vectorIndex struct {
	mu      sync.RWMutex
	byScope map[scopeKey][]vecEntry
	pos     map[int64]int   // rowid → index in its scope's slice
	owners  map[int64]owner // every memory
}

// owner is the scope a memory was stored under.
type owner struct {
	key     scopeKey
	session string
}

func newVectorIndex() *vectorIndex {
	return &vectorIndex{byScope: map[scopeKey][]vecEntry{}, pos: map[int64]int{}, owners: map[int64]owner{}}
}

// add records a stored memory; vec is nil for one without a vector.
func (x *vectorIndex) add(scope memory.Scope, rowid int64, vec []float32) {
	k := scopeKey{scope.Agent, scope.User}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.owners[rowid] = owner{k, scope.Session}
	if vec == nil {
		return
	}
	e := vecEntry{rowid: rowid, session: scope.Session, vec: vec}
	if len(vec)%16 == 0 {
		e.q8, e.qb = vecdot.Quantize8(make([]int8, 0, len(vec)), vec)
	}
	x.pos[rowid] = len(x.byScope[k])
	x.byScope[k] = append(x.byScope[k], e)
}

func (x *vectorIndex) remove(scope memory.Scope, rowids []int64) {
	k := scopeKey{scope.Agent, scope.User}
	x.mu.Lock()
	defer x.mu.Unlock()
	es := x.byScope[k]
	for _, r := range rowids {
		delete(x.owners, r)
		i, ok := x.pos[r]
		if !ok {
			continue
		}
		last := len(es) - 1
		es[i] = es[last]
		x.pos[es[i].rowid] = i
		es = es[:last]
		delete(x.pos, r)
	}
	x.byScope[k] = es
}

// visible keeps the candidates scope may see (Scope.Sees: same agent and
// user, a shared memory or one of the same session), in order.
func (x *vectorIndex) visible(scope memory.Scope, cs []scored) []scored {
	k := scopeKey{scope.Agent, scope.User}
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := cs[:0]
	for _, c := range cs {
		if o, ok := x.owners[c.rowid]; ok && o.key == k && (o.session == "" || o.session == scope.Session) {
			out = append(out, c)
		}
	}
	return out
}

// scored is a candidate rowid with a similarity.
type scored struct {
	rowid int64
	score float64
}

// minHeap keeps the best k candidates with the worst on top; among equal
// scores the older memory (lower rowid) is worse, so the top k is one
// set whatever the scan order.
type minHeap []scored

func (h minHeap) Len() int { return len(h) }
func (h minHeap) Less(i, j int) bool {
	if h[i].score != h[j].score {
		return h[i].score < h[j].score
	}
	return h[i].rowid < h[j].rowid
}
func (h minHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *minHeap) Push(v any)   { *h = append(*h, v.(scored)) }
func (h *minHeap) Pop() any {
	old := *h
	v := old[len(old)-1]
	*h = old[:len(old)-1]
	return v
}

func (h *minHeap) offer(k int, c scored) {
	if len(*h) < k {
		heap.Push(h, c)
	} else if w := (*h)[0]; c.score > w.score || c.score == w.score && c.rowid > w.rowid {
		(*h)[0] = c
		heap.Fix(h, 0)
	}
}

// search returns the k memories visible in scope most similar to q. With
// firstPass set, it first scans the int8 copies for bounds on each similarity
// and computes the float32 similarity only of the memories whose upper
// bound reaches the k-th best lower bound (internal/vecdot's quant.go):
// a quarter of the bytes read, the same k memories.
func (x *vectorIndex) search(scope memory.Scope, q []float32, k int, dot func(a, b []float32) float32, firstPass bool) []scored {
	x.mu.RLock()
	defer x.mu.RUnlock()
	es := x.byScope[scopeKey{scope.Agent, scope.User}]
	h := make(minHeap, 0, k+1)
	if !firstPass || len(q)%16 != 0 {
		for _, e := range es {
			if e.session != "" && e.session != scope.Session {
				continue
			}
			h.offer(k, scored{e.rowid, float64(dot(q, e.vec))})
		}
		return h
	}
	q16, qscale, qresid := vecdot.QueryQ16(q)
	sc := upperScratch.Get().(*[]float32)
	defer upperScratch.Put(sc)
	upper := (*sc)[:0]
	var lower vecdot.TopLower
	lower.Reset(k)
	for _, e := range es {
		if e.session != "" && e.session != scope.Session {
			upper = append(upper, float32(math.Inf(-1)))
			continue
		}
		var a, b float32 // a vector of another size scores 0 (dot)
		if len(e.q8) == len(q) {
			a, b = vecdot.Bounds(q16, qscale, qresid, e.q8, e.qb)
		}
		upper = append(upper, a+b)
		lower.Offer(a - b)
	}
	*sc = upper
	threshold := lower.Threshold()
	for i, ub := range upper {
		if ub >= threshold && !math.IsInf(float64(ub), -1) {
			h.offer(k, scored{es[i].rowid, float64(dot(q, es[i].vec))})
		}
	}
	return h
}

var upperScratch = sync.Pool{New: func() any { return new([]float32) }}

// similarity returns q's similarity to each of rowids that has a vector in
// scope's group (keyword hits outside the vector top-k).
func (x *vectorIndex) similarity(scope memory.Scope, q []float32, rowids []int64, into map[int64]float64, dot func(a, b []float32) float32) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	es := x.byScope[scopeKey{scope.Agent, scope.User}]
	for _, r := range rowids {
		if _, done := into[r]; done {
			continue
		}
		if i, ok := x.pos[r]; ok && i < len(es) && es[i].rowid == r {
			into[r] = float64(dot(q, es[i].vec))
		}
	}
}

// dot is internal/vecdot's kernel (AVX2/FMA on x86-64), shared with
// retrieval-sqlite.
func dot(a, b []float32) float32 {
	if len(a) != len(b) {
		return 0 // a vector from another model size never matches
	}
	return vecdot.Dot(a, b)
}

func normalize(v []float32) {
	var n float64
	for _, x := range v {
		n += float64(x) * float64(x)
	}
	if n == 0 {
		return
	}
	inv := float32(1 / math.Sqrt(n))
	for i := range v {
		v[i] *= inv
	}
}

func encodeVector(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func decodeVector(b []byte) []float32 {
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

// ftsQuery turns free text into an FTS5 query that ORs its words, each
// quoted so operators and punctuation in user text are never syntax.
func ftsQuery(text string) string {
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsNumber(r)
	})
	seen := map[string]bool{}
	var terms []string
	for _, w := range words {
		if !seen[w] {
			seen[w] = true
			terms = append(terms, `"`+w+`"`)
		}
	}
	return strings.Join(terms, " OR ")
}

// keywordSearch returns up to k visible memories matching q by BM25, as
// positive scores (FTS5's bm25() is lower-is-better), best first and older
// first on ties (the order FTS5 yields matches in, which the joined query
// used before kept). FTS5 scores every match either way; the scope is checked
// against the in-memory owners instead of joining each match's row, which
// read a page of the memories table per match (vectors live in the rows).
func (s *store) keywordSearch(ctx context.Context, scope memory.Scope, q string, k int) ([]scored, error) {
	fq := ftsQuery(q)
	if fq == "" {
		return nil, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT rowid, bm25(memories_fts) FROM memories_fts WHERE memories_fts MATCH ?`, fq)
	if err != nil {
		return nil, fmt.Errorf("full-text recall: %w", err)
	}
	defer rows.Close()
	var out []scored
	for rows.Next() {
		var c scored
		if err := rows.Scan(&c.rowid, &c.score); err != nil {
			return nil, fmt.Errorf("full-text recall: %w", err)
		}
		c.score = -c.score
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("full-text recall: %w", err)
	}
	out = s.vecs.visible(scope, out)
	sort.Slice(out, func(i, j int) bool {
		if out[i].score != out[j].score {
			return out[i].score > out[j].score
		}
		return out[i].rowid < out[j].rowid
	})
	return out[:min(len(out), k)], nil
}

// Recall ranks visible memories by a weighted sum of cosine similarity
// (clamped to [0, 1]) and BM25 divided by the best BM25 among the keyword
// hits, so the score lies in [0, 1] and a memory that is both the best
// keyword match and an exact semantic match scores 1. Candidates are the
// union of the top vector and top keyword hits. Without an embedder the
// score is the normalised BM25 alone.
func (s *store) Recall(ctx context.Context, scope memory.Scope, query string, limit int, minScore float64) ([]memory.Scored, error) {
	return s.recall(ctx, scope, query, limit, minScore, recallPaths{keyword: s.keywordSearch, dot: dot, firstPass: true})
}

// recallPaths are the two searches Recall combines; the benchmark runs the
// same ranking over the paths recall used before (BenchmarkStoresMemoryRecall).
type recallPaths struct {
	keyword   func(ctx context.Context, scope memory.Scope, q string, k int) ([]scored, error)
	dot       func(a, b []float32) float32
	firstPass bool // search's int8 first pass
}

func (s *store) recall(ctx context.Context, scope memory.Scope, query string, limit int, minScore float64, paths recallPaths) ([]memory.Scored, error) {
	if strings.TrimSpace(query) == "" {
		return nil, status.Errorf(status.InvalidArgument, "recall query is empty; say what to recall")
	}
	if limit <= 0 {
		limit = defaultRecallLimit
	}
	limit = min(limit, maxRecallLimit)
	pool := max(4*limit, 40)

	kw, err := paths.keyword(ctx, scope, query, pool)
	if err != nil {
		return nil, err
	}
	var maxKW float64
	kwScore := map[int64]float64{}
	for _, c := range kw {
		maxKW = max(maxKW, c.score)
	}
	for _, c := range kw {
		if maxKW > 0 {
			kwScore[c.rowid] = c.score / maxKW
		}
	}

	cands := map[int64]float64{}
	if s.emb == nil {
		for r, k := range kwScore {
			cands[r] = k
		}
	} else {
		qv, _, err := s.embed(ctx, []string{query})
		if err != nil {
			return nil, err
		}
		top := s.vecs.search(scope, qv[0], pool, paths.dot, paths.firstPass)
		sims := make(map[int64]float64, len(top)+len(kw))
		for _, c := range top {
			sims[c.rowid] = c.score
		}
		kwIDs := make([]int64, len(kw))
		for i, c := range kw {
			kwIDs[i] = c.rowid
		}
		s.vecs.similarity(scope, qv[0], kwIDs, sims, paths.dot)
		wv, wk := s.cfg.VectorWeight, s.cfg.KeywordWeight
		combine := func(r int64) float64 {
			return (wv*min(max(sims[r], 0), 1) + wk*kwScore[r]) / (wv + wk)
		}
		for _, c := range top {
			cands[c.rowid] = combine(c.rowid)
		}
		for r := range kwScore {
			cands[r] = combine(r)
		}
	}

	ranked := make([]scored, 0, len(cands))
	for r, sc := range cands {
		if sc >= minScore {
			ranked = append(ranked, scored{r, sc})
		}
	}
	sort.Slice(ranked, func(i, j int) bool {
		if ranked[i].score != ranked[j].score {
			return ranked[i].score > ranked[j].score
		}
		return ranked[i].rowid > ranked[j].rowid // newer first on ties
	})
	if len(ranked) > limit {
		ranked = ranked[:limit]
	}
	ids := make([]int64, len(ranked))
	for i, c := range ranked {
		ids[i] = c.rowid
	}
	ms, err := s.getByRowid(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]memory.Scored, 0, len(ranked))
	for _, c := range ranked {
		if m, ok := ms[c.rowid]; ok { // forgotten since the search: skip
			out = append(out, memory.Scored{Memory: m, Score: c.score})
		}
	}
	return out, nil
}

// backfill embeds memories stored without a vector or under another model
// than the wired embedder's, so switching embedders or wiring one later
// keeps old memories recallable by meaning.
func (s *store) backfill(ctx context.Context) error {
	_, model, err := s.embed(ctx, []string{"model probe"})
	if err != nil {
		return err
	}
	s.model = model
	for {
		rows, err := s.db.QueryContext(ctx, `SELECT rowid, text FROM memories WHERE vector IS NULL OR model != ? LIMIT ?`, model, backfillBatch)
		if err != nil {
			return fmt.Errorf("find memories to embed: %w", err)
		}
		var ids []int64
		var texts []string
		for rows.Next() {
			var id int64
			var t string
			if err := rows.Scan(&id, &t); err != nil {
				rows.Close()
				return fmt.Errorf("find memories to embed: %w", err)
			}
			ids, texts = append(ids, id), append(texts, t)
		}
		rows.Close()
		if len(ids) == 0 {
			return nil
		}
		vecs, got, err := s.embed(ctx, texts)
		if err != nil {
			return err
		}
		if got != model {
			return status.Errorf(status.Internal, "embeddings plugin changed model from %q to %q while embedding stored memories; reconfigure to retry", model, got)
		}
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("store embedded memories: %w", err)
		}
		for i, id := range ids {
			if _, err := tx.ExecContext(ctx, `UPDATE memories SET vector = ?, model = ? WHERE rowid = ?`, encodeVector(vecs[i]), model, id); err != nil {
				tx.Rollback()
				return fmt.Errorf("store embedded memories: %w", err)
			}
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("store embedded memories: %w", err)
		}
	}
}

// loadIndex fills the in-memory index from the database: the owner of
// every memory and, with an embedder, the vectors of the wired model.
func (s *store) loadIndex(ctx context.Context) error {
	rows, err := s.db.QueryContext(ctx, `SELECT rowid, agent, user, session, model, vector FROM memories`)
	if err != nil {
		return fmt.Errorf("load the memory index: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var rowid int64
		var sc memory.Scope
		var model string
		var blob []byte
		if err := rows.Scan(&rowid, &sc.Agent, &sc.User, &sc.Session, &model, &blob); err != nil {
			return fmt.Errorf("load the memory index: %w", err)
		}
		var vec []float32
		if s.emb != nil && blob != nil && model == s.model {
			vec = decodeVector(blob)
		}
		s.vecs.add(sc, rowid, vec)
	}
	return rows.Err()
}
