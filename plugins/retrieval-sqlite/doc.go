// Command nemoclave-plugin-retrieval-sqlite is the embedded retrieval store:
// collections of documents (text, metadata, vector) in one SQLite file,
// searched in memory.
//
// Each collection's vectors live in one contiguous []float32, unit-length,
// loaded at Configure and kept in sync with every upsert and delete, so an
// exact top-k query is a tight dot-product loop split over the available
// cores with a bounded heap per worker (exact.go), run in two passes over
// an int8 copy and a float32 re-rank that stay exact (quant.go). Collections larger than
// hnsw_threshold also get a hand-written HNSW graph (hnsw.go), built in the
// background; unfiltered queries use it once it is ready, filtered queries
// and queries made while it builds stay exact. Text queries are embedded by
// the wired embeddings plugin; without one they are answered by FTS5 BM25
// over the documents' text.
//
// Filters follow retrieval.MatchFilters exactly because they are evaluated
// with it, over the metadata held in memory. The package owns its database
// file and nothing else.
package main
