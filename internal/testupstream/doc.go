// Package testupstream is a deterministic stand-in for model providers,
// speaking the real OpenAI (/v1/chat/completions, /v1/models) and
// Anthropic (/v1/messages, /v1/models) wire formats, streaming included.
// Tests and benchmarks run it as a separate process (cmd/testupstream,
// started by Start) so the gateway and plugins are measured and tested
// across a real network hop, never against an in-process mock.
//
// Behaviour is chosen by the requested model name (see Handler). It owns
// nothing else and must never be imported by production code.
package testupstream
