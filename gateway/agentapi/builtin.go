package agentapi

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/nemoclave/nemoclave/sdk/retrieval"
)

// Built-in MCP tools over the agent's memory and retrieval plugins, so any
// MCP-speaking agent gets memory and document search without knowing the
// REST API. Memories written by tools are shared across the user's chats
// (no session), which is what "remember" means to a user.

type rememberArgs struct {
	Text string `json:"text" jsonschema:"what to remember, as a self-contained sentence"`
}

type recallArgs struct {
	Query string `json:"query" jsonschema:"what to look for"`
	Limit int    `json:"limit,omitempty" jsonschema:"maximum memories to return (default 5)"`
}

type forgetArgs struct {
	IDs []string `json:"ids" jsonschema:"ids of memories to forget, as returned by memory_recall"`
}

type searchArgs struct {
	Query      string `json:"query" jsonschema:"what to search for"`
	Collection string `json:"collection,omitempty" jsonschema:"collection to search (default: every collection)"`
	TopK       int    `json:"top_k,omitempty" jsonschema:"number of passages (default 5)"`
}

func textResult(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}

// toolErr turns an error into a tool result the model can read.
func toolErr(err error) (*mcp.CallToolResult, any, error) {
	return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: err.Error()}}}, nil, nil
}

func (h *Handler) addBuiltinTools(s *mcp.Server) {
	if h.cfg.Memory != nil {
		mcp.AddTool(s, &mcp.Tool{Name: "memory_remember", Description: "Store a fact about the user or the work so it can be recalled in later chats."},
			func(ctx context.Context, _ *mcp.CallToolRequest, a rememberArgs) (*mcp.CallToolResult, any, error) {
				start := time.Now()
				m, err := h.cfg.Memory.Remember(ctx, h.scope(""), a.Text, map[string]any{"source": "agent"})
				h.audit("memory", "remember", "", start, err)
				if err != nil {
					return toolErr(err)
				}
				return textResult("Remembered (id " + m.ID + ")."), nil, nil
			})
		mcp.AddTool(s, &mcp.Tool{Name: "memory_recall", Description: "Recall stored memories relevant to a query, best first."},
			func(ctx context.Context, _ *mcp.CallToolRequest, a recallArgs) (*mcp.CallToolResult, any, error) {
				start := time.Now()
				if a.Limit <= 0 {
					a.Limit = 5
				}
				got, err := h.cfg.Memory.Recall(ctx, h.scope(""), a.Query, a.Limit, 0)
				h.audit("memory", "recall", "", start, err)
				if err != nil {
					return toolErr(err)
				}
				if len(got) == 0 {
					return textResult("No memories match."), nil, nil
				}
				var b strings.Builder
				for _, m := range got {
					fmt.Fprintf(&b, "- [%s] (score %.2f) %s\n", m.Memory.ID, m.Score, m.Memory.Text)
				}
				return textResult(b.String()), nil, nil
			})
		mcp.AddTool(s, &mcp.Tool{Name: "memory_forget", Description: "Forget memories by id."},
			func(ctx context.Context, _ *mcp.CallToolRequest, a forgetArgs) (*mcp.CallToolResult, any, error) {
				start := time.Now()
				n, err := h.cfg.Memory.Forget(ctx, h.scope(""), a.IDs, false)
				h.audit("memory", "forget", "", start, err)
				if err != nil {
					return toolErr(err)
				}
				return textResult(fmt.Sprintf("Forgot %d memories.", n)), nil, nil
			})
	}
	if h.cfg.Retrieval != nil {
		mcp.AddTool(s, &mcp.Tool{Name: "retrieval_search", Description: "Search the ingested documents; cite results by their source and id."},
			func(ctx context.Context, _ *mcp.CallToolRequest, a searchArgs) (*mcp.CallToolResult, any, error) {
				start := time.Now()
				out, err := h.search(ctx, a)
				h.audit("retrieval", "search", "", start, err)
				if err != nil {
					return toolErr(err)
				}
				return textResult(out), nil, nil
			})
	}
}

func (h *Handler) search(ctx context.Context, a searchArgs) (string, error) {
	if a.TopK <= 0 {
		a.TopK = 5
	}
	cols := []string{a.Collection}
	if a.Collection == "" {
		all, err := h.cfg.Retrieval.ListCollections(ctx)
		if err != nil {
			return "", err
		}
		cols = cols[:0]
		for _, c := range all {
			cols = append(cols, c.Name)
		}
	}
	var b strings.Builder
	for _, c := range cols {
		matches, err := h.cfg.Retrieval.Query(ctx, &retrieval.QueryRequest{Collection: c, Text: a.Query, TopK: a.TopK})
		if err != nil {
			return "", err
		}
		for _, m := range matches {
			src, _ := json.Marshal(m.Document.Metadata["source"])
			fmt.Fprintf(&b, "[%s:%s source=%s score=%.2f]\n%s\n\n", c, m.Document.ID, src, m.Score, m.Document.Text)
		}
	}
	if b.Len() == 0 {
		return "No documents match.", nil
	}
	return b.String(), nil
}
