// Package agentapi serves the agent-facing APIs of the gateway on a
// sandbox's listener: the tools of the blueprint's tools plugins as one MCP
// server (streamable HTTP), and memory and retrieval as a small REST API and
// as MCP tools.
//
// Identity is the listener: a Handler is built for one sandbox and agent,
// and every call is scoped to them; nothing in a request can name another
// sandbox, agent or user. It owns the MCP and REST surfaces; it must not
// launch plugins or know how a store is implemented.
package agentapi
