package vecdot

import (
	"math"
	"math/rand/v2"
	"testing"
)

func unitVec(r *rand.Rand, n int, spiky bool) []float32 {
	v := make([]float32, n)
	var s float64
	for i := range v {
		x := r.NormFloat64()
		if spiky && i%37 == 0 {
			x *= 40 // one large component squeezes the others' int8 steps
		}
		v[i] = float32(x)
		s += x * x
	}
	for i := range v {
		v[i] = float32(float64(v[i]) / math.Sqrt(s))
	}
	return v
}

// TestBoundsHold: for random unit vectors of common sizes, the true
// similarity lies within Bounds' a ± b, and the bound is tight enough to
// prune (far below the similarity range of 2).
func TestBoundsHold(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{16, 384, 768, 1536} {
		for i := range 200 {
			spiky := i%3 == 0
			q, v := unitVec(r, n, spiky), unitVec(r, n, !spiky)
			if i%10 == 0 {
				v = q // identical vectors: similarity 1
			}
			var ref float64
			for j := range q {
				ref += float64(q[j]) * float64(v[j])
			}
			q16, qs, qr := QueryQ16(q)
			v8, vq := Quantize8(nil, v)
			if len(v8) != n {
				t.Fatalf("Quantize8 of %d dims gave %d", n, len(v8))
			}
			a, b := Bounds(q16, qs, qr, v8, vq)
			if math.Abs(float64(a)-ref) > float64(b) {
				t.Fatalf("%d dims: |%v − %v| exceeds the bound %v", n, a, ref, b)
			}
			if b > 0.1 {
				t.Fatalf("%d dims: bound %v too loose to prune anything", n, b)
			}
		}
	}
}

// TestQuantizeZero: the zero vector and query quantise to zeros with a
// bound of only the slack, never NaN.
func TestQuantizeZero(t *testing.T) {
	t.Parallel()
	z := make([]float32, 32)
	q16, qs, qr := QueryQ16(z)
	v8, vq := Quantize8(nil, z)
	a, b := Bounds(q16, qs, qr, v8, vq)
	if a != 0 || b != BoundSlack {
		t.Fatalf("zero vectors: a %v b %v, want 0 and %v", a, b, BoundSlack)
	}
}
