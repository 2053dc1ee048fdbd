package main

import (
	"container/heap"
	"math"
	"runtime"
	"sync"

	"github.com/nemoclave/nemoclave/internal/vecdot"
	"github.com/nemoclave/nemoclave/sdk/retrieval"
)

// minParallelSlots is the collection size below which a query runs on one
// goroutine: splitting costs more than it saves on small collections.
const minParallelSlots = 16384

// vectors is one collection's searchable vectors. Slots are append-only:
// an upsert appends a new slot and kills the old one, a delete kills its
// slot, and nothing written to data is ever changed in place. That lets
// the HNSW builder read a snapshot of data without holding the lock, and
// compaction reclaims dead slots by building a new vectors.
type vectors struct {
	dims   int
	data   []float32 // slot*dims .. (slot+1)*dims, unit length
	ids    []string  // slot → document ID; "" for a dead slot
	rowids []int64   // slot → SQLite rowid
	meta   []map[string]any
	slot   map[string]int // live document ID → slot
	dead   int
	// The int8 copy for the exact search's first pass (quant.go).
	q8  []int8
	q8q []vecdot.Q8
}

func newVectors(dims int) *vectors {
	return &vectors{dims: dims, slot: map[string]int{}}
}

func (v *vectors) live() int { return len(v.ids) - v.dead }

// put adds or replaces id; vec must be unit length and dims long.
func (v *vectors) put(id string, rowid int64, vec []float32, meta map[string]any) {
	v.kill(id)
	v.slot[id] = len(v.ids)
	v.ids = append(v.ids, id)
	v.rowids = append(v.rowids, rowid)
	v.meta = append(v.meta, meta)
	v.data = append(v.data, vec...)
	v.quantize(vec)
}

func (v *vectors) kill(id string) {
	if s, ok := v.slot[id]; ok {
		v.ids[s] = ""
		v.meta[s] = nil
		delete(v.slot, id)
		v.dead++
	}
}

// compacted returns a copy without dead slots.
func (v *vectors) compacted() *vectors {
	n := newVectors(v.dims)
	n.data = make([]float32, 0, v.live()*v.dims)
	for s, id := range v.ids {
		if id != "" {
			n.put(id, v.rowids[s], v.data[s*v.dims:(s+1)*v.dims], v.meta[s])
		}
	}
	return n
}

// hit is a candidate slot and its cosine similarity.
type hit struct {
	slot int
	sim  float32
}

// topK keeps the k best hits with the worst on top.
type topK []hit

func (h topK) Len() int { return len(h) }
func (h topK) Less(i, j int) bool {
	if h[i].sim != h[j].sim {
		return h[i].sim < h[j].sim
	}
	return h[i].slot < h[j].slot // deterministic order among ties: older slot is "worse"
}
func (h topK) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *topK) Push(x any)   { *h = append(*h, x.(hit)) }
func (h *topK) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func (h *topK) offer(k int, c hit) {
	if len(*h) < k {
		heap.Push(h, c)
	} else if c.sim > (*h)[0].sim {
		(*h)[0] = c
		heap.Fix(h, 0)
	}
}

// sorted drains the heap best first.
func (h *topK) sorted() []hit {
	out := make([]hit, h.Len())
	for i := len(out) - 1; i >= 0; i-- {
		out[i] = heap.Pop(h).(hit)
	}
	return out
}

// exact returns the k live slots most similar to q (unit length) among
// those whose metadata passes filters (already validated), best first.
// The scan is split over GOMAXPROCS goroutines, each with its own heap;
// sizes that are a multiple of 16 (every common embedding size) take the
// two-pass int8 route of quant.go, which reads a quarter of the bytes.
func (v *vectors) exact(q []float32, k int, filters []retrieval.Filter) []hit {
	if v.dims%16 == 0 {
		return v.exactTwoPass(q, k, filters)
	}
	n := len(v.ids)
	workers := min(runtime.GOMAXPROCS(0), max(1, n/minParallelSlots))
	parts := make([]topK, workers)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := n*w/workers, n*(w+1)/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			parts[w] = v.scan(q, k, lo, hi, filters)
		}()
	}
	wg.Wait()
	var all topK
	for _, p := range parts {
		for _, c := range p {
			all.offer(k, c)
		}
	}
	return all.sorted()
}

func (v *vectors) scan(q []float32, k, lo, hi int, filters []retrieval.Filter) topK {
	h := make(topK, 0, k+1)
	d := v.dims
	q = q[:d]
	for s := lo; s < hi; s++ {
		if v.ids[s] == "" {
			continue
		}
		if len(filters) > 0 {
			if ok, _ := retrieval.MatchFilters(v.meta[s], filters); !ok {
				continue
			}
		}
		sim := dot(q, v.data[s*d:s*d+d:s*d+d])
		if len(h) < k || sim > h[0].sim {
			h.offer(k, hit{s, sim})
		}
	}
	return h
}

// unit returns v scaled to unit length (a copy), or nil for the zero vector.
func unit(v []float32) []float32 {
	var n float64
	for _, x := range v {
		n += float64(x) * float64(x)
	}
	if n == 0 || math.IsNaN(n) || math.IsInf(n, 0) {
		return nil
	}
	inv := 1 / math.Sqrt(n)
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(float64(x) * inv)
	}
	return out
}
