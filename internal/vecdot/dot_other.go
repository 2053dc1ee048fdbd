//go:build !amd64

package vecdot

// hasAVX2 is false off x86-64: there are only the Go loops.
const hasAVX2 = false

// Dot returns a·b over len(a); len(b) must be >= len(a).
func Dot(a, b []float32) float32 { return DotGo(a, b) }

// DotI8 returns q·v over len(v); len(v) must be a multiple of 16 and
// len(q) >= len(v).
func DotI8(q []int16, v []int8) int32 { return DotI8Go(q, v) }
