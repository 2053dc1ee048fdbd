// Package wire groups the HTTP wire formats nemoclave speaks: openai
// (Chat Completions, Embeddings, Models), anthropic (Messages) and sse
// (server-sent events). Each format package holds the JSON types and the
// conversions to and from the neutral sdk/llm types, so the gateway (server
// side) and the provider plugins (client side) translate the same way.
//
// These packages own encoding only: no HTTP clients, no routing, no
// credentials.
package wire
