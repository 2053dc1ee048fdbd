// Package openai holds the OpenAI HTTP wire format (Chat Completions with
// tools and streaming, Embeddings, Models, errors) and its conversion to
// and from the neutral sdk/llm types. The gateway decodes agent requests
// with it; the llm-openai plugin encodes provider requests with it.
//
// It owns only encoding: it must not perform HTTP, hold credentials or
// know about routes.
package openai
