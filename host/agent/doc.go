// Package agent is the built-in agent, `nemoclave agent`, that runs inside a
// sandbox: an interactive or one-shot chat with a tool-calling loop. It talks
// only to what the sandbox environment offers — the inference gateway at
// OPENAI_BASE_URL and the tools MCP server at NEMOCLAVE_MCP_URL — and holds
// no credential.
//
// It owns the conversation loop and its terminal rendering. It must not
// reach plugins, the daemon or the host directly: everything goes through
// the gateway, exactly as a third-party agent would.
package agent
