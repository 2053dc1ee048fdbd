package main

import "golang.org/x/sys/cpu"

// hasAVX2 selects the assembly kernel; every x86-64 CPU from 2013 on has
// AVX2 and FMA, older ones take the Go loop.
var hasAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

//go:noescape
func dotAVX2(a, b []float32) float32

// dot is the inner loop of every search. len(b) must be >= len(a).
func dot(a, b []float32) float32 {
	if hasAVX2 {
		return dotAVX2(a, b)
	}
	return dotGo(a, b)
}

//go:noescape
func dotI8AVX2(q []int16, v []int8) int32

// dotI8 is the int8 pre-filter's kernel; len(v) must be a multiple of 16.
func dotI8(q []int16, v []int8) int32 {
	if hasAVX2 {
		return dotI8AVX2(q, v)
	}
	return dotI8Go(q, v)
}
