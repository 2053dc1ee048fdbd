// Command nemoclave-plugin-memory-sqlite is the embedded memory store: an
// agent's memories persist across chats in one SQLite file, scoped by agent,
// user and session (memory.Scope.Sees and Owns are the rules).
//
// Recall is hybrid: FTS5 full-text search ranked by BM25, plus cosine
// similarity of vectors from the embeddings plugin wired to the
// `embeddings` attribute, combined with configurable weights into one score
// in [0, 1]. Without a wired embedder recall is BM25 alone. Vectors are
// held in memory per (agent, user), with the scope of every memory, and kept
// in sync with the database, so a recall reads neither every vector nor the
// row of each full-text hit (the plugin process is its file's only writer:
// the file lives in its own state dir). The scan first reads an int8 copy
// of each vector for similarity bounds, then scores exactly in float32 only
// the vectors that can reach the top k (internal/vecdot, shared with
// retrieval-sqlite; the results equal a full float32 scan's).
//
// Durability: the database runs in WAL mode with synchronous=FULL, so every
// acknowledged Remember and Forget is fsynced before it returns and
// survives the process being killed with SIGKILL (tested for real).
//
// `nemoclave-plugin-memory-sqlite export -db PATH` writes memories as JSON
// lines for backups and migrations (see export.go). The package owns its
// database file and nothing else; it talks to the embeddings plugin only
// through plugin.Host.
package main
