// Package sse reads and writes server-sent events (text/event-stream) as
// the OpenAI and Anthropic streaming APIs use them. It owns framing only;
// the event payloads belong to the format packages.
package sse
