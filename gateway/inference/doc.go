// Package inference is the gateway's model router: an http.Handler served
// on one sandbox's inference listener that speaks the OpenAI
// (/v1/chat/completions, /v1/responses, /v1/embeddings, /v1/models) and
// Anthropic (/v1/messages, /v1/messages/count_tokens) wire formats,
// resolves model aliases to routes, calls the llm provider plugins (which
// hold the credentials), falls back and retries before the first byte
// reaches the agent, streams SSE without buffering, and meters token usage
// against budgets and rate limits.
//
// A request in the route provider's own dialect is passed through as the
// agent wrote it (llm.Forwarder; passthrough.go): only the model name, the
// credential and, for metering, stream_options.include_usage change.
// Across dialects the request is translated through the neutral sdk/llm
// types (chat.go); the Responses API is always translated, and its stored
// responses live in the router, bounded and expiring (responses_store.go).
//
// Identity is the listener: a Router is built per sandbox and never reads
// identity, or credentials, from request headers. Caller credential
// headers (Authorization, x-api-key, api-key) are ignored; of the agent's
// headers only the protocol ones (anthropic-version, anthropic-beta,
// openai-beta) reach a same-dialect provider.
//
// The package owns routing, translation between the wire shapes (with
// internal/wire), usage metering (UsageStore, with a SQLite
// implementation), budgets, rate limits, GenAI metrics and traces. It must
// not resolve credentials, launch plugins or read blueprints: the host
// wires Providers and Routes in, and may swap them at runtime with
// SetRoutes, SetProviders and SetDefault.
package inference
