//go:build !amd64

package main

// hasAVX2 is false off x86-64: there is only the Go loop.
const hasAVX2 = false

// dot is the inner loop of every search. len(b) must be >= len(a).
func dot(a, b []float32) float32 { return dotGo(a, b) }

// dotI8 is the int8 pre-filter's kernel.
func dotI8(q []int16, v []int8) int32 { return dotI8Go(q, v) }
