// Package responses is the OpenAI Responses API wire format (POST
// /v1/responses): the request, its input items (messages, function_call,
// function_call_output), the response object, and the streaming event
// sequence (response.created … response.completed), converted to and from
// the neutral sdk/llm types so any provider can answer it.
//
// It implements the format as OpenAI's API reference defines it, not as
// one client happens to use it. What has no neutral equivalent is listed
// on DecodeRequest. It owns no state: stored responses live in the
// gateway.
package responses
