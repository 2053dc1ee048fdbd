// Package dataproc is the SDK for data-processing plugins: the Processor
// interface authors implement (list operations, transform a document —
// extract text, chunk, convert, generate files such as xlsx or csv), its
// Go-native types, and the gRPC adapters sdk/plugin wires.
//
// The package must not import sdk/plugin (plugin imports it to register
// the kind).
package dataproc
