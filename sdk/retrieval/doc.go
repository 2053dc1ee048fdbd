// Package retrieval is the SDK for retrieval plugins (vector stores): the
// Store interface authors implement (collections, upsert, query by text
// or vector with metadata filters, delete), its Go-native types,
// MatchFilters — the one definition of filter semantics every store
// follows — and the gRPC adapters sdk/plugin wires.
//
// The package must not import sdk/plugin (plugin imports it to register
// the kind).
package retrieval
