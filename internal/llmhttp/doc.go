// Package llmhttp is the HTTP scaffolding the llm-openai and
// llm-anthropic plugins share: the pooled client, sending a request with
// the provider key, classifying a non-2xx answer into an sdk/status error,
// redacting the key from any text, and forwarding a same-dialect request
// (llm.Forwarder) byte for byte.
//
// Errors it returns reach the agent, so they never name the provider's
// URL (an agent has no business knowing where its model runs, and the
// operator finds the URL in the blueprint) and never carry the key.
package llmhttp
