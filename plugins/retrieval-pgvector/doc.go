// Command nemoclave-plugin-retrieval-pgvector is the retrieval store for
// deployments that outgrow one machine: the retrieval.Store contract of
// retrieval-sqlite on PostgreSQL with the pgvector extension, which it
// requires (CREATE EXTENSION vector runs at configure).
//
// All collections share one documents table with an untyped vector
// column; each collection with known dimensions gets its own partial HNSW
// expression index (cosine), so unfiltered vector queries are answered by
// pgvector's approximate search (tuned by hnsw_ef_search). Filtered
// queries are answered exactly: rows stream in distance order with index
// scans disabled and retrieval.MatchFilters selects among them, so filter
// semantics are the SDK's to the letter (no SQL translation to drift).
// Text queries are embedded by the wired embeddings plugin; without one
// they use PostgreSQL full-text search (ts_rank_cd, GIN index).
//
// The package owns the nemoclave_collections and nemoclave_documents
// tables and their indexes, nothing else in the database.
package main
