// Package anthropic holds the Anthropic Messages HTTP wire format
// (requests with tools, responses, the streaming event sequence, errors)
// and its conversion to and from the neutral sdk/llm types. The gateway
// serves /v1/messages with it; the llm-anthropic plugin calls the
// Messages API with it.
//
// It owns only encoding: it must not perform HTTP, hold credentials or
// know about routes.
package anthropic
