// Package toolloop is the one tool-calling loop of nemoclave's own agents:
// the built-in agent (`nemoclave agent`, inside a sandbox) and a
// blueprint's subagents (in the daemon). Both ask the inference gateway's
// Chat Completions endpoint on the project's wire types
// (internal/wire/openai), run the tools the model calls, and ask again
// until the model answers without calling one.
//
// It owns the HTTP exchange with the gateway (unary and SSE, tool-call
// deltas put back together) and the loop. Where tools come from (an MCP
// session, tool plugins) and how text is shown belong to the callers.
package toolloop
