package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/nemoclave/nemoclave/internal/wire/openai"
)

// toolbox is the agent's view of the gateway's MCP server. The tool list is
// refreshed when the server says it changed.
type toolbox struct {
	session *mcp.ClientSession

	mu    sync.Mutex
	tools []*mcp.Tool
	stale bool
}

func connectTools(ctx context.Context, url string, hc *http.Client) (*toolbox, error) {
	tb := &toolbox{}
	client := mcp.NewClient(&mcp.Implementation{Name: "nemoclave-agent", Version: "0.1.0"}, &mcp.ClientOptions{
		ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) {
			tb.mu.Lock()
			tb.stale = true
			tb.mu.Unlock()
		},
	})
	session, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: hc}, nil)
	if err != nil {
		return nil, fmt.Errorf("connect to the tools server at %s: %w", url, err)
	}
	tb.session = session
	if err := tb.refresh(ctx); err != nil {
		session.Close()
		return nil, err
	}
	return tb, nil
}

func (t *toolbox) refresh(ctx context.Context) error {
	var tools []*mcp.Tool
	for tool, err := range t.session.Tools(ctx, nil) {
		if err != nil {
			return fmt.Errorf("list tools: %w", err)
		}
		tools = append(tools, tool)
	}
	t.mu.Lock()
	t.tools, t.stale = tools, false
	t.mu.Unlock()
	return nil
}

// List offers the server's tools to the model (toolloop.Tools).
func (t *toolbox) List(ctx context.Context) []openai.Tool {
	t.mu.Lock()
	stale := t.stale
	t.mu.Unlock()
	if stale {
		_ = t.refresh(ctx) // keep the old list if the refresh fails
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]openai.Tool, 0, len(t.tools))
	for _, tool := range t.tools {
		params := json.RawMessage(`{"type":"object","properties":{}}`)
		if b, err := json.Marshal(tool.InputSchema); err == nil && string(b) != "null" {
			params = b
		}
		out = append(out, openai.Tool{Type: "function", Function: openai.Function{Name: tool.Name, Description: tool.Description, Parameters: params}})
	}
	return out
}

// call runs a tool and renders its content as the text the model sees.
func (t *toolbox) Call(ctx context.Context, name string, args json.RawMessage) (string, error) {
	var arguments map[string]any
	if len(args) > 0 {
		if err := json.Unmarshal(args, &arguments); err != nil {
			return "", fmt.Errorf("tool %s: the model sent arguments that are not a JSON object: %w", name, err)
		}
	}
	res, err := t.session.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: arguments})
	if err != nil {
		return "", fmt.Errorf("tool %s: %w", name, err)
	}
	var b strings.Builder
	for _, c := range res.Content {
		switch c := c.(type) {
		case *mcp.TextContent:
			b.WriteString(c.Text)
		case *mcp.ImageContent:
			fmt.Fprintf(&b, "[image %s, %d bytes]", c.MIMEType, len(c.Data))
		case *mcp.EmbeddedResource:
			if c.Resource != nil {
				fmt.Fprintf(&b, "[resource %s]\n%s", c.Resource.URI, c.Resource.Text)
			}
		default:
			if j, err := json.Marshal(c); err == nil {
				b.Write(j)
			}
		}
	}
	if res.IsError {
		return "", fmt.Errorf("tool %s failed: %s", name, b.String())
	}
	return b.String(), nil
}

func (t *toolbox) Close() error { return t.session.Close() }

// has reports whether the server offers the tool.
func (t *toolbox) has(name string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, tool := range t.tools {
		if tool.Name == name {
			return true
		}
	}
	return false
}
