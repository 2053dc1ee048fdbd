// Package gateway is the data plane between sandboxes and everything
// outside them. It has no code of its own; each concern is a sub-package:
//
//   - gateway/egress: the forward proxy that is a sandbox's only way to the
//     internet (policy, SNI checks, SSRF defence, TLS inspection, approvals,
//     audit).
//   - gateway/inference: the model router (OpenAI- and Anthropic-compatible
//     endpoints, credentials injected here and nowhere else).
//   - gateway/agentapi: tools (MCP), memory and retrieval for the agent.
//
// Identity is the listener: the sandbox driver creates listeners inside a
// sandbox's network namespace and hands them to the gateway, which knows a
// connection's sandbox from the listener it arrived on, never from a header
// or token. The gateway must not import sandbox/ or host/; host/ wires them.
package gateway
