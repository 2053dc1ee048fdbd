// Package memory is the SDK for memory plugins: the Store interface authors
// implement (remember, recall by query, list, forget — all scoped per
// agent, user and session), its Go-native types, the scope rules every
// store must share (Scope.Sees, Scope.Owns), and the gRPC adapters
// sdk/plugin wires.
//
// A memory store usually needs embeddings: declare a config attribute with
// PluginKind "embeddings" and reach it through plugin.Host.Embeddings. The
// package must not import sdk/plugin (plugin imports it to register the
// kind).
package memory
