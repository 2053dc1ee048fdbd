package vecdot

// DotGo is the portable dot product (dot_amd64.s is the fast one): eight
// independent accumulators let the CPU overlap the multiply-adds, and the
// reslicing lets the compiler drop bounds checks.
func DotGo(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3, s4, s5, s6, s7 float32
	i := 0
	for ; i+8 <= len(a); i += 8 {
		aa, bb := a[i:i+8:i+8], b[i:i+8:i+8]
		s0 += aa[0] * bb[0]
		s1 += aa[1] * bb[1]
		s2 += aa[2] * bb[2]
		s3 += aa[3] * bb[3]
		s4 += aa[4] * bb[4]
		s5 += aa[5] * bb[5]
		s6 += aa[6] * bb[6]
		s7 += aa[7] * bb[7]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3) + (s4 + s5) + (s6 + s7)
}

// DotI8Go is the portable int8×int16 dot product.
func DotI8Go(q []int16, v []int8) int32 {
	var s int32
	for i, x := range v {
		s += int32(q[i]) * int32(x)
	}
	return s
}
