package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"unicode"

	"github.com/nemoclave/nemoclave/sdk/memory"
	"github.com/nemoclave/nemoclave/sdk/status"
)

const (
	defaultRecallLimit = 10
	maxRecallLimit     = 1000
)

// tsQuery ORs the words of free text for to_tsquery; only letters and
// digits survive, so user text is never tsquery syntax.
func tsQuery(text string) string {
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsNumber(r)
	})
	seen := map[string]bool{}
	var terms []string
	for _, w := range words {
		if !seen[w] {
			seen[w] = true
			terms = append(terms, w)
		}
	}
	return strings.Join(terms, " | ")
}

type scored struct {
	seq   int64
	score float64
}

const scopeWhere = `agent = $1 AND "user" = $2 AND (session = '' OR session = $3)`

func (s *store) keywordSearch(ctx context.Context, scope memory.Scope, q string, k int) ([]scored, error) {
	tq := tsQuery(q)
	if tq == "" {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT seq, ts_rank_cd(tsv, q) AS r FROM nemoclave_memories, to_tsquery('english', $4) q
		WHERE `+scopeWhere+` AND tsv @@ q ORDER BY r DESC, seq DESC LIMIT $5`, scope.Agent, scope.User, scope.Session, tq, k)
	if err != nil {
		return nil, fmt.Errorf("full-text recall: %w", err)
	}
	defer rows.Close()
	var out []scored
	for rows.Next() {
		var c scored
		var r float32
		if err := rows.Scan(&c.seq, &r); err != nil {
			return nil, fmt.Errorf("full-text recall: %w", err)
		}
		c.score = float64(r)
		out = append(out, c)
	}
	return out, rows.Err()
}

// vectorSearch returns the k visible memories nearest to q by cosine,
// plus the similarity of each of also (keyword hits outside the top k).
func (s *store) vectorSearch(ctx context.Context, scope memory.Scope, q []float32, k int, also []int64) (map[int64]float64, []int64, error) {
	lit := vectorLiteral(q)
	rows, err := s.pool.Query(ctx, `SELECT seq, 1 - (embedding <=> $4::vector) FROM nemoclave_memories
		WHERE `+scopeWhere+` AND model = $5 AND embedding IS NOT NULL AND vector_dims(embedding) = $6
		ORDER BY embedding <=> $4::vector LIMIT $7`, scope.Agent, scope.User, scope.Session, lit, s.model, len(q), k)
	if err != nil {
		return nil, nil, fmt.Errorf("vector recall: %w", err)
	}
	sims := map[int64]float64{}
	var top []int64
	for rows.Next() {
		var seq int64
		var sim float64
		if err := rows.Scan(&seq, &sim); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("vector recall: %w", err)
		}
		sims[seq] = sim
		top = append(top, seq)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("vector recall: %w", err)
	}
	var missing []int64
	for _, seq := range also {
		if _, ok := sims[seq]; !ok {
			missing = append(missing, seq)
		}
	}
	if len(missing) > 0 {
		rows, err := s.pool.Query(ctx, `SELECT seq, 1 - (embedding <=> $1::vector) FROM nemoclave_memories
			WHERE seq = ANY($2) AND model = $3 AND embedding IS NOT NULL AND vector_dims(embedding) = $4`, lit, missing, s.model, len(q))
		if err != nil {
			return nil, nil, fmt.Errorf("vector recall: %w", err)
		}
		for rows.Next() {
			var seq int64
			var sim float64
			if err := rows.Scan(&seq, &sim); err != nil {
				rows.Close()
				return nil, nil, fmt.Errorf("vector recall: %w", err)
			}
			sims[seq] = sim
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, nil, fmt.Errorf("vector recall: %w", err)
		}
	}
	return sims, top, nil
}

// Recall scores like memory-sqlite: a weighted sum of cosine similarity
// (clamped to [0, 1]) and the full-text rank divided by the best rank
// among the keyword hits, over the union of the top vector and keyword
// hits; without an embedder the normalised rank alone.
func (s *store) Recall(ctx context.Context, scope memory.Scope, query string, limit int, minScore float64) ([]memory.Scored, error) {
	if strings.TrimSpace(query) == "" {
		return nil, status.Errorf(status.InvalidArgument, "recall query is empty; say what to recall")
	}
	if limit <= 0 {
		limit = defaultRecallLimit
	}
	limit = min(limit, maxRecallLimit)
	pool := max(4*limit, 40)
	kw, err := s.keywordSearch(ctx, scope, query, pool)
	if err != nil {
		return nil, err
	}
	var maxKW float64
	for _, c := range kw {
		maxKW = max(maxKW, c.score)
	}
	kwScore := map[int64]float64{}
	kwSeqs := make([]int64, 0, len(kw))
	for _, c := range kw {
		kwSeqs = append(kwSeqs, c.seq)
		if maxKW > 0 {
			kwScore[c.seq] = c.score / maxKW
		} else {
			kwScore[c.seq] = 0
		}
	}
	cands := map[int64]float64{}
	if s.emb == nil {
		for seq, k := range kwScore {
			cands[seq] = k
		}
	} else {
		qv, _, err := s.embed(ctx, []string{query})
		if err != nil {
			return nil, err
		}
		sims, top, err := s.vectorSearch(ctx, scope, qv[0], pool, kwSeqs)
		if err != nil {
			return nil, err
		}
		wv, wk := s.cfg.VectorWeight, s.cfg.KeywordWeight
		combine := func(seq int64) float64 {
			return (wv*min(max(sims[seq], 0), 1) + wk*kwScore[seq]) / (wv + wk)
		}
		for _, seq := range top {
			cands[seq] = combine(seq)
		}
		for _, seq := range kwSeqs {
			cands[seq] = combine(seq)
		}
	}
	ranked := make([]scored, 0, len(cands))
	for seq, sc := range cands {
		if sc >= minScore {
			ranked = append(ranked, scored{seq, sc})
		}
	}
	sort.Slice(ranked, func(i, j int) bool {
		if ranked[i].score != ranked[j].score {
			return ranked[i].score > ranked[j].score
		}
		return ranked[i].seq > ranked[j].seq
	})
	if len(ranked) > limit {
		ranked = ranked[:limit]
	}
	seqs := make([]int64, len(ranked))
	for i, c := range ranked {
		seqs[i] = c.seq
	}
	ms, err := s.getBySeq(ctx, seqs)
	if err != nil {
		return nil, err
	}
	out := make([]memory.Scored, 0, len(ranked))
	for _, c := range ranked {
		if m, ok := ms[c.seq]; ok {
			out = append(out, memory.Scored{Memory: m, Score: c.score})
		}
	}
	return out, nil
}
