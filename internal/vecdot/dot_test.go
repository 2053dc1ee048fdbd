package vecdot

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestDotKernelsAgree checks the assembly kernel against the Go loop and a
// float64 reference for every length up to 100 (all tail paths) and 384.
func TestDotKernelsAgree(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range append([]int{384, 1536}, func() []int {
		var ns []int
		for i := range 100 {
			ns = append(ns, i)
		}
		return ns
	}()...) {
		a, b := make([]float32, n), make([]float32, n+3)
		var ref float64
		for i := range a {
			a[i], b[i] = float32(r.NormFloat64()), float32(r.NormFloat64())
			ref += float64(a[i]) * float64(b[i])
		}
		for name, got := range map[string]float32{"Dot": Dot(a, b), "DotGo": DotGo(a, b)} {
			if math.Abs(float64(got)-ref) > 1e-4*math.Max(1, math.Abs(ref)) {
				t.Fatalf("%s over %d: %v, reference %v", name, n, got, ref)
			}
		}
	}
	if !hasAVX2 {
		t.Log("no AVX2 on this CPU: only the Go loop was exercised")
	}
}

func BenchmarkDot384(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	a, c := make([]float32, 384), make([]float32, 384)
	for i := range a {
		a[i], c[i] = float32(r.NormFloat64()), float32(r.NormFloat64())
	}
	b.Run("avx2", func(b *testing.B) {
		for b.Loop() {
			Dot(a, c)
		}
	})
	b.Run("go", func(b *testing.B) {
		for b.Loop() {
			DotGo(a, c)
		}
	})
}

func TestDotI8KernelsAgree(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{16, 32, 48, 384, 1024} {
		q, v := make([]int16, n), make([]int8, n)
		for i := range q {
			q[i], v[i] = int16(r.IntN(32767)-16383), int8(r.IntN(255)-127)
		}
		if got, want := DotI8(q, v), DotI8Go(q, v); got != want {
			t.Fatalf("DotI8 over %d = %d, Go loop %d", n, got, want)
		}
	}
}
