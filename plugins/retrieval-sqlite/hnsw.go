package main

import (
	"container/heap"
	"math"
	"math/rand/v2"
	"sort"
	"sync"
)

// hnswParams tunes the approximate index. BENCHMARKS.md has recall@10
// and latency for several efSearch values at 100k 384-dimension vectors;
// raise efSearch for recall, lower it for latency.
type hnswParams struct {
	M              int
	EfConstruction int
	EfSearch       int
}

// hnsw is a Hierarchical Navigable Small World graph (Malkov & Yashunin,
// 2016) over a collection's slots, written here rather than imported: the
// graph needs to share the collection's append-only vector array instead
// of holding a copy, and skip dead slots at search time, and no Go HNSW
// library in our dependency set does either. Nodes are slot numbers; a
// dead slot stays in the graph as a waypoint until the collection is
// compacted and the graph rebuilt.
type hnsw struct {
	p    hnswParams
	dims int
	ml   float64
	rng  *rand.Rand

	visits sync.Pool // *visitSet, one per concurrent search

	mu       sync.RWMutex
	data     []float32   // the collection's data as of the last insert
	links    [][][]int32 // node → level → neighbours
	entry    int32
	maxLevel int
}

func newHNSW(dims int, p hnswParams) *hnsw {
	return &hnsw{p: p, dims: dims, ml: 1 / math.Log(float64(p.M)), rng: rand.New(rand.NewPCG(1, 2)), entry: -1}
}

func (h *hnsw) len() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.links)
}

func (h *hnsw) vec(n int32) []float32 {
	o := int(n) * h.dims
	return h.data[o : o+h.dims : o+h.dims]
}

// visitSet marks visited nodes by generation, so a search clears it in
// O(1) instead of allocating a map.
type visitSet struct {
	mark []uint32
	gen  uint32
}

func (v *visitSet) reset(n int) {
	if len(v.mark) < n {
		v.mark = make([]uint32, n+n/4+64)
		v.gen = 0
	}
	v.gen++
	if v.gen == 0 {
		clear(v.mark)
		v.gen = 1
	}
}

// first marks i and reports whether it was unvisited.
func (v *visitSet) first(i int32) bool {
	if v.mark[i] == v.gen {
		return false
	}
	v.mark[i] = v.gen
	return true
}

// candidate is a node and its similarity to the query.
type candidate struct {
	node int32
	sim  float32
}

// nearHeap pops the most similar candidate first.
type nearHeap []candidate

func (x nearHeap) Len() int           { return len(x) }
func (x nearHeap) Less(i, j int) bool { return x[i].sim > x[j].sim }
func (x nearHeap) Swap(i, j int)      { x[i], x[j] = x[j], x[i] }
func (x *nearHeap) Push(v any)        { *x = append(*x, v.(candidate)) }
func (x *nearHeap) Pop() any {
	old := *x
	v := old[len(old)-1]
	*x = old[:len(old)-1]
	return v
}

// farHeap pops the least similar candidate first.
type farHeap []candidate

func (x farHeap) Len() int           { return len(x) }
func (x farHeap) Less(i, j int) bool { return x[i].sim < x[j].sim }
func (x farHeap) Swap(i, j int)      { x[i], x[j] = x[j], x[i] }
func (x *farHeap) Push(v any)        { *x = append(*x, v.(candidate)) }
func (x *farHeap) Pop() any {
	old := *x
	v := old[len(old)-1]
	*x = old[:len(old)-1]
	return v
}

// add inserts node n (the next slot) whose vector is in data, the
// collection's current array. Nodes must be added in slot order.
func (h *hnsw) add(n int32, data []float32) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.data = data
	level := int(math.Floor(-math.Log(1-h.rng.Float64()) * h.ml))
	h.links = append(h.links, make([][]int32, level+1))
	if h.entry < 0 {
		h.entry, h.maxLevel = n, level
		return
	}
	q := h.vec(n)
	ep := candidate{h.entry, dot(q, h.vec(h.entry))}
	for l := h.maxLevel; l > level; l-- {
		ep = h.greedy(q, ep, l)
	}
	eps := []candidate{ep}
	for l := min(level, h.maxLevel); l >= 0; l-- {
		found := h.searchLayer(q, eps, h.p.EfConstruction, l)
		maxConn := h.p.M
		if l == 0 {
			maxConn = 2 * h.p.M
		}
		neigh := h.selectNeighbours(found, h.p.M)
		h.links[n][l] = neigh
		for _, m := range neigh {
			h.links[m][l] = append(h.links[m][l], n)
			if len(h.links[m][l]) > maxConn {
				h.prune(m, l, maxConn)
			}
		}
		eps = found
	}
	if level > h.maxLevel {
		h.entry, h.maxLevel = n, level
	}
}

// greedy walks level l from ep to the node most similar to q.
func (h *hnsw) greedy(q []float32, ep candidate, l int) candidate {
	for changed := true; changed; {
		changed = false
		for _, m := range h.links[ep.node][l] {
			if s := dot(q, h.vec(m)); s > ep.sim {
				ep, changed = candidate{m, s}, true
			}
		}
	}
	return ep
}

// searchLayer is the beam search of the paper's Algorithm 2: up to ef
// nodes of level l most similar to q, best first.
func (h *hnsw) searchLayer(q []float32, eps []candidate, ef, l int) []candidate {
	visited, _ := h.visits.Get().(*visitSet)
	if visited == nil {
		visited = &visitSet{}
	}
	defer h.visits.Put(visited)
	visited.reset(len(h.links))
	near := make(nearHeap, 0, ef)
	far := make(farHeap, 0, ef+1)
	for _, e := range eps {
		visited.first(e.node)
		heap.Push(&near, e)
		heap.Push(&far, e)
		if far.Len() > ef {
			heap.Pop(&far)
		}
	}
	for near.Len() > 0 {
		c := heap.Pop(&near).(candidate)
		if far.Len() >= ef && c.sim < far[0].sim {
			break
		}
		for _, m := range h.links[c.node][l] {
			if !visited.first(m) {
				continue
			}
			s := dot(q, h.vec(m))
			if far.Len() < ef || s > far[0].sim {
				heap.Push(&near, candidate{m, s})
				heap.Push(&far, candidate{m, s})
				if far.Len() > ef {
					heap.Pop(&far)
				}
			}
		}
	}
	out := []candidate(far)
	sort.Slice(out, func(i, j int) bool { return out[i].sim > out[j].sim })
	return out
}

// selectNeighbours is the paper's heuristic (Algorithm 4): keep a
// candidate only if it is closer to the base than to any neighbour kept
// so far, which spreads links across clusters; then fill up with the
// nearest pruned ones so nodes keep m links.
func (h *hnsw) selectNeighbours(cands []candidate, m int) []int32 {
	var kept, pruned []int32
	for _, c := range cands {
		if len(kept) >= m {
			break
		}
		good := true
		for _, k := range kept {
			if dot(h.vec(c.node), h.vec(k)) > c.sim {
				good = false
				break
			}
		}
		if good {
			kept = append(kept, c.node)
		} else {
			pruned = append(pruned, c.node)
		}
	}
	for _, p := range pruned {
		if len(kept) >= m {
			break
		}
		kept = append(kept, p)
	}
	return kept
}

// prune cuts node m's links at level l back to maxConn.
func (h *hnsw) prune(m int32, l, maxConn int) {
	base := h.vec(m)
	cands := make([]candidate, len(h.links[m][l]))
	for i, x := range h.links[m][l] {
		cands[i] = candidate{x, dot(base, h.vec(x))}
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].sim > cands[j].sim })
	h.links[m][l] = h.selectNeighbours(cands, maxConn)
}

// search returns up to k live nodes most similar to q, best first. live
// reports whether a slot still holds a document; dead nodes are walked
// through but not returned, so ef grows with the share of dead nodes.
func (h *hnsw) search(q []float32, k int, live func(int32) bool) []hit {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.entry < 0 {
		return nil
	}
	ep := candidate{h.entry, dot(q, h.vec(h.entry))}
	for l := h.maxLevel; l > 0; l-- {
		ep = h.greedy(q, ep, l)
	}
	found := h.searchLayer(q, []candidate{ep}, max(h.p.EfSearch, k), 0)
	out := make([]hit, 0, k)
	for _, c := range found {
		if live(c.node) {
			out = append(out, hit{int(c.node), c.sim})
			if len(out) == k {
				break
			}
		}
	}
	return out
}
