// Package inference is the gateway's model router: an http.Handler served
// on one sandbox's inference listener that speaks the OpenAI
// (/v1/chat/completions, /v1/embeddings, /v1/models) and Anthropic
// (/v1/messages) wire formats, resolves model aliases to routes, calls the
// llm provider plugins (which hold the credentials), falls back and
// retries before the first byte reaches the agent, streams SSE without
// buffering, and meters token usage against budgets and rate limits.
//
// Identity is the listener: a Router is built per sandbox and never reads
// identity, or credentials, from request headers. Caller credential
// headers (Authorization, x-api-key, api-key) are ignored: nothing of the
// agent's request but its decoded body reaches a provider.
//
// The package owns routing, translation between the two wire shapes (with
// internal/wire), usage metering (UsageStore, with a SQLite
// implementation), budgets, rate limits, GenAI metrics and traces. It must
// not resolve credentials, launch plugins or read blueprints: the host
// wires Providers and Routes in, and may swap them at runtime with
// SetRoutes, SetProviders and SetDefault.
package inference
