// Package vecdot holds the dot-product kernels of the vector stores
// (retrieval-sqlite's exact scan and HNSW graph, memory-sqlite's recall):
// float32 with AVX2/FMA and int8×int16 with AVX2 on x86-64, and portable
// Go loops everywhere else. The two float32 kernels sum in different
// orders, so their results differ in the last bits; nothing compares
// scores across machines.
//
// It also owns the int8 first pass of an exact top-k scan (quant.go): the
// quantisation of vectors and queries, the proven error bound of each
// approximate similarity, and TopLower, the k-th largest lower bound that
// decides which vectors are re-ranked in float32.
package vecdot
