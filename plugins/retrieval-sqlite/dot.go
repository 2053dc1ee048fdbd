package main

import "github.com/nemoclave/nemoclave/internal/vecdot"

// dot is the inner loop of every search (shared with memory-sqlite in
// internal/vecdot); len(b) must be >= len(a).
func dot(a, b []float32) float32 { return vecdot.Dot(a, b) }

// dotI8 is the int8 pre-filter's kernel; len(v) must be a multiple of 16.
func dotI8(q []int16, v []int8) int32 { return vecdot.DotI8(q, v) }
