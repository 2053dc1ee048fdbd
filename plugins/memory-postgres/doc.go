// Command nemoclave-plugin-memory-postgres is the memory store for
// deployments that outgrow one machine: the memory.Store contract of
// memory-sqlite on PostgreSQL, so several hosts share one memory.
//
// Recall is hybrid like memory-sqlite's: PostgreSQL full-text search
// (ts_rank_cd over a generated tsvector with a GIN index) plus cosine
// similarity over vectors from the wired embeddings plugin, stored in a
// pgvector column, combined with configurable weights into [0, 1]. The
// vector path needs the pgvector extension (CREATE EXTENSION vector, run
// by the plugin when an embedder is wired); without an embedder plain
// PostgreSQL is enough. Vector search runs within one (agent, user) scope,
// which the scope index narrows to that user's memories, so it needs no
// ANN index.
//
// The package owns the nemoclave_memories table and nothing else in the
// database.
package main
