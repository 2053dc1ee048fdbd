// Package llm is the SDK for LLM provider plugins: the Provider interface
// authors implement (model listing, chat, streaming chat with tool calls and
// token usage), its Go-native request and response types, Accumulate to
// fold a stream into a response, and the gRPC adapters sdk/plugin wires.
//
// Authors program against the types here only; the generated protobuf code
// stays internal so this API can evolve without proto churn. The package
// must not import sdk/plugin (plugin imports it to register the kind).
package llm
