package main

import (
	"encoding/json"
	"fmt"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/nemoclave/nemoclave/sdk/tools"
)

// toolFromMCP converts a server's tool description, prefixing its name.
func toolFromMCP(prefix string, t *mcp.Tool) (tools.Tool, error) {
	in, err := json.Marshal(t.InputSchema)
	if err != nil {
		return tools.Tool{}, fmt.Errorf("tool %q: input schema: %w", t.Name, err)
	}
	if t.InputSchema == nil || string(in) == "null" {
		in = json.RawMessage(`{"type":"object"}`)
	}
	out := tools.Tool{Name: prefix + t.Name, Description: t.Description, InputSchema: in}
	if t.Description == "" && t.Title != "" {
		out.Description = t.Title
	}
	if t.OutputSchema != nil {
		if out.OutputSchema, err = json.Marshal(t.OutputSchema); err != nil {
			return tools.Tool{}, fmt.Errorf("tool %q: output schema: %w", t.Name, err)
		}
	}
	if a := t.Annotations; a != nil {
		out.ReadOnly = a.ReadOnlyHint
		// MCP's default for destructiveHint is true when the tool is not
		// read-only; keep that so policy asks before an unknown write.
		out.Destructive = !a.ReadOnlyHint && (a.DestructiveHint == nil || *a.DestructiveHint)
	} else {
		out.Destructive = true
	}
	return out, nil
}

// resultFromMCP converts a tool result.
func resultFromMCP(r *mcp.CallToolResult) (*tools.CallResult, error) {
	out := &tools.CallResult{IsError: r.IsError}
	for _, c := range r.Content {
		switch c := c.(type) {
		case *mcp.TextContent:
			out.Content = append(out.Content, tools.TextContent(c.Text))
		case *mcp.ImageContent:
			out.Content = append(out.Content, tools.Content{Image: &tools.Blob{MIMEType: c.MIMEType, Data: c.Data}})
		case *mcp.AudioContent:
			out.Content = append(out.Content, tools.Content{Resource: &tools.Blob{MIMEType: c.MIMEType, Data: c.Data}})
		case *mcp.ResourceLink:
			out.Content = append(out.Content, tools.Content{Resource: &tools.Blob{URI: c.URI, Name: c.Name, MIMEType: c.MIMEType}})
		case *mcp.EmbeddedResource:
			if c.Resource == nil {
				continue
			}
			data := c.Resource.Blob
			if data == nil && c.Resource.Text != "" {
				data = []byte(c.Resource.Text)
			}
			out.Content = append(out.Content, tools.Content{Resource: &tools.Blob{URI: c.Resource.URI, MIMEType: c.Resource.MIMEType, Data: data}})
		default:
			// Content kinds newer than this plugin are shown, not dropped.
			b, err := json.Marshal(c)
			if err != nil {
				return nil, fmt.Errorf("tool result content %T: %w", c, err)
			}
			out.Content = append(out.Content, tools.TextContent(string(b)))
		}
	}
	if r.StructuredContent != nil {
		b, err := json.Marshal(r.StructuredContent)
		if err != nil {
			return nil, fmt.Errorf("tool result structured content: %w", err)
		}
		out.Structured = b
	}
	return out, nil
}
