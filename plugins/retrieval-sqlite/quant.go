package main

import (
	"math"
	"runtime"
	"sync"

	"github.com/nemoclave/nemoclave/internal/vecdot"
	"github.com/nemoclave/nemoclave/sdk/retrieval"
)

// An exact scan of 100k 384-dimension float32 vectors reads 154 MB and is
// bound by memory bandwidth, not arithmetic. So every vector is also kept
// as int8 (a quarter of the bytes) with a per-vector scale, and exact
// search runs in two passes that are still exact:
//
//  1. Scan the int8 copies for an approximate similarity a of each vector
//     and a proven bound b on its error (|q·v − a| ≤ b, from the
//     quantisation residuals ‖v − v̂‖ and ‖q − q̂‖ by Cauchy–Schwarz).
//  2. The k-th largest lower bound a − b is at most the true k-th best
//     similarity, so every true top-k vector has an upper bound a + b at
//     or above it; re-rank exactly that candidate set in float32.
//
// The result is the float32 exact top-k; tests compare it with brute force.

// quantize appends v (unit length) as int8 with its scale, residual norm
// ‖v − v̂‖ and norm ‖v̂‖ (internal/vecdot's Quantize8).
func (v *vectors) quantize(vec []float32) {
	var q vecdot.Q8
	v.q8, q = vecdot.Quantize8(v.q8, vec)
	v.q8q = append(v.q8q, q)
}

// boundScan is one worker's first pass: the k largest lower bounds, and
// the upper bound of every slot in [lo, hi) (-Inf for slots skipped).
type boundScan struct {
	lower vecdot.TopLower
	upper []float32
}

func (v *vectors) firstPass(q16 []int16, qscale, qresid float32, k, lo, hi int, filters []retrieval.Filter, out *boundScan) {
	d := v.dims
	out.lower.Reset(k)
	out.upper = out.upper[:0]
	for s := lo; s < hi; s++ {
		if v.ids[s] == "" {
			out.upper = append(out.upper, float32(math.Inf(-1)))
			continue
		}
		if len(filters) > 0 {
			if ok, _ := retrieval.MatchFilters(v.meta[s], filters); !ok {
				out.upper = append(out.upper, float32(math.Inf(-1)))
				continue
			}
		}
		a, b := vecdot.Bounds(q16, qscale, qresid, v.q8[s*d:s*d+d:s*d+d], v.q8q[s])
		out.upper = append(out.upper, a+b)
		out.lower.Offer(a - b)
	}
}

var boundScans = sync.Pool{New: func() any { return new(boundScan) }}

// exactTwoPass is exact via the int8 pre-filter (see the top of the file).
func (v *vectors) exactTwoPass(q []float32, k int, filters []retrieval.Filter) []hit {
	n := len(v.ids)
	q16, qscale, qresid := vecdot.QueryQ16(q)
	workers := min(runtime.GOMAXPROCS(0), max(1, n/minParallelSlots))
	scans := make([]*boundScan, workers)
	var wg sync.WaitGroup
	for w := range workers {
		scans[w] = boundScans.Get().(*boundScan)
		lo, hi := n*w/workers, n*(w+1)/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			v.firstPass(q16, qscale, qresid, k, lo, hi, filters, scans[w])
		}()
	}
	wg.Wait()
	defer func() {
		for _, s := range scans {
			boundScans.Put(s)
		}
	}()
	// The k-th largest lower bound over all workers.
	var lower vecdot.TopLower
	lower.Reset(k)
	for _, s := range scans {
		for _, x := range s.lower.Bounds() {
			lower.Offer(x)
		}
	}
	threshold := lower.Threshold()
	var best topK
	d := v.dims
	for w, s := range scans {
		lo := n * w / workers
		for i, ub := range s.upper {
			if ub >= threshold && !math.IsInf(float64(ub), -1) {
				slot := lo + i
				best.offer(k, hit{slot, dot(q, v.data[slot*d:slot*d+d:slot*d+d])})
			}
		}
	}
	return best.sorted()
}
