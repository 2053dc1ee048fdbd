package main

import "github.com/nemoclave/nemoclave/internal/vecdot"

// dot is the inner loop of every search (shared with memory-sqlite in
// internal/vecdot); len(b) must be >= len(a).
func dot(a, b []float32) float32 { return vecdot.Dot(a, b) }
