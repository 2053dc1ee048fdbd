// Package embeddings is the SDK for embedding plugins: the Embedder
// interface authors implement, its request/response types, and the gRPC
// adapters the host and plugin sides use. Authors import only the
// interface and types; the adapters are wired by sdk/plugin.
package embeddings
