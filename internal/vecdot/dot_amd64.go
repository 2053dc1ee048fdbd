package vecdot

import "golang.org/x/sys/cpu"

// hasAVX2 selects the assembly kernels; every x86-64 CPU from 2013 on has
// AVX2 and FMA, older ones take the Go loops.
var hasAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

//go:noescape
func dotAVX2(a, b []float32) float32

// Dot returns a·b over len(a); len(b) must be >= len(a).
func Dot(a, b []float32) float32 {
	if hasAVX2 {
		return dotAVX2(a, b)
	}
	return DotGo(a, b)
}

//go:noescape
func dotI8AVX2(q []int16, v []int8) int32

// DotI8 returns q·v over len(v); len(v) must be a multiple of 16 and
// len(q) >= len(v).
func DotI8(q []int16, v []int8) int32 {
	if hasAVX2 {
		return dotI8AVX2(q, v)
	}
	return DotI8Go(q, v)
}
