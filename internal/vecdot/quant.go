package vecdot

import (
	"container/heap"
	"math"
)

// The int8 first pass of an exact top-k scan (retrieval-sqlite's exact
// search, memory-sqlite's recall): each unit vector v is also kept as int8
// v̂ with a scale, the query q as int16 q̂, and DotI8 gives an approximate
// similarity a with a proven bound b on its error, |q·v − a| ≤ b, by
// Cauchy–Schwarz over the residuals: b = ‖v − v̂‖ + ‖q − q̂‖·‖v̂‖ + BoundSlack.
// The k-th largest lower bound a − b is at most the true k-th best
// similarity, so re-ranking exactly every vector whose upper bound a + b
// reaches it gives the float32 top-k.

// BoundSlack covers float32 rounding in the approximate and exact
// similarities.
const BoundSlack = 1e-4

// Q8 is one vector's quantisation: its scale, ‖v − v̂‖ and ‖v̂‖.
type Q8 struct{ Scale, Resid, Norm float32 }

// Quantize8 appends vec (unit length) as int8 to dst and returns dst and
// the quantisation's scale and norms.
func Quantize8(dst []int8, vec []float32) ([]int8, Q8) {
	var m float64
	for _, x := range vec {
		m = max(m, math.Abs(float64(x)))
	}
	scale := m / 127
	var resid, norm float64
	for _, x := range vec {
		var q int8
		if scale > 0 {
			q = int8(max(-127, min(127, math.Round(float64(x)/scale))))
		}
		dst = append(dst, q)
		r := float64(q) * scale
		resid += (float64(x) - r) * (float64(x) - r)
		norm += r * r
	}
	return dst, Q8{Scale: float32(scale), Resid: float32(math.Sqrt(resid)), Norm: float32(math.Sqrt(norm))}
}

// QueryQ16 quantises a query to int16 (|q̂| ≤ 16383 keeps the int32 sums of
// DotI8 far from overflow) and returns q̂, its scale and ‖q − q̂‖.
func QueryQ16(q []float32) ([]int16, float32, float32) {
	var m float64
	for _, x := range q {
		m = max(m, math.Abs(float64(x)))
	}
	out := make([]int16, len(q))
	if m == 0 {
		return out, 0, 0
	}
	scale := m / 16383
	var resid float64
	for i, x := range q {
		out[i] = int16(math.Round(float64(x) / scale))
		d := float64(x) - float64(out[i])*scale
		resid += d * d
	}
	return out, float32(scale), float32(math.Sqrt(resid))
}

// Bounds returns the approximate similarity of the query (q̂ with scale
// qscale and residual qresid) to the vector v̂ quantised as vq, and the
// bound on its error. len(v) must be a multiple of 16.
func Bounds(q16 []int16, qscale, qresid float32, v []int8, vq Q8) (a, b float32) {
	a = float32(DotI8(q16, v)) * qscale * vq.Scale
	return a, vq.Resid + qresid*vq.Norm + BoundSlack
}

// TopLower keeps the k largest lower bounds a − b offered by a first
// pass (a min-heap). Once k are in, Threshold is the k-th largest: no
// vector whose upper bound a + b is below it can be in the top k.
type TopLower struct {
	k int
	h lowerHeap
}

// Reset empties t for a scan keeping k, reusing its storage.
func (t *TopLower) Reset(k int) { t.k, t.h = k, t.h[:0] }

// Offer takes one lower bound.
func (t *TopLower) Offer(x float32) {
	switch {
	case len(t.h) < t.k:
		heap.Push(&t.h, x)
	case t.k > 0 && x > t.h[0]:
		t.h[0] = x
		heap.Fix(&t.h, 0)
	}
}

// Threshold is the k-th largest lower bound offered, or −Inf while fewer
// than k were (then every vector is a candidate).
func (t *TopLower) Threshold() float32 {
	if t.k > 0 && len(t.h) == t.k {
		return t.h[0]
	}
	return float32(math.Inf(-1))
}

// Bounds lists the lower bounds kept (for merging workers' scans).
func (t *TopLower) Bounds() []float32 { return t.h }

type lowerHeap []float32

func (h lowerHeap) Len() int           { return len(h) }
func (h lowerHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h lowerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *lowerHeap) Push(x any)        { *h = append(*h, x.(float32)) }
func (h *lowerHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
