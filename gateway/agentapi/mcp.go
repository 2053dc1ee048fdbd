package agentapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/nemoclave/nemoclave/sdk/status"
	"github.com/nemoclave/nemoclave/sdk/tools"
	"github.com/nemoclave/nemoclave/version"
)

// toolServer is the sandbox's MCP server. It mirrors the tools of every
// tools plugin, plus the built-in memory and retrieval tools, and follows
// tool-list changes of plugins that can report them.
type toolServer struct {
	h      *Handler
	server *mcp.Server
	cancel context.CancelFunc

	mu sync.Mutex
	// bySource remembers which MCP names each source registered, so a
	// change replaces exactly them.
	bySource map[string][]string
	// owner maps an MCP tool name to the source that registered it.
	owner map[string]string
}

func newToolServer(ctx context.Context, cfg Config) (*toolServer, error) {
	ts := &toolServer{
		server:   mcp.NewServer(&mcp.Implementation{Name: "nemoclave-gateway", Version: version.Version}, &mcp.ServerOptions{Capabilities: &mcp.ServerCapabilities{Tools: &mcp.ToolCapabilities{ListChanged: true}}}),
		bySource: map[string][]string{},
		owner:    map[string]string{},
	}
	ts.server.AddReceivingMiddleware(ts.auditRefusedCalls)
	for _, src := range cfg.Tools {
		list, err := src.Provider.ListTools(ctx)
		if err != nil {
			return nil, fmt.Errorf("tools plugin %q: list tools: %w", src.Name, err)
		}
		ts.sync(src, list)
	}
	wctx, cancel := context.WithCancel(context.Background())
	ts.cancel = cancel
	for _, src := range cfg.Tools {
		if w, ok := src.Provider.(tools.Watcher); ok {
			go ts.watch(wctx, src, w)
		}
	}
	return ts, nil
}

// auditRefusedCalls records the tool calls the MCP server refuses before
// any handler runs (R9): a tool name nobody registered, arguments its
// schema rejects. Every handler of this server reports a failure as a
// tool result (IsError) and audits it itself, never as a protocol error,
// so an error here is always such a refusal and is audited exactly once.
func (ts *toolServer) auditRefusedCalls(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		start := time.Now()
		res, err := next(ctx, method, req)
		if err == nil || method != "tools/call" || ts.h == nil {
			return res, err
		}
		name, args := "", []byte(nil)
		if r, ok := req.(*mcp.CallToolRequest); ok && r.Params != nil {
			name, args = r.Params.Name, r.Params.Arguments
		}
		if len(name) > maxAuditName {
			name = name[:maxAuditName] + "…"
		}
		ts.h.audit("tool_call", name, "", start, fmt.Errorf("refused: %w", err), args)
		return res, err
	}
}

// maxAuditName caps a tool name as the agent sent it in an audit line.
const maxAuditName = 256

// bind attaches the handler after construction (the builtin tools need it).
func (ts *toolServer) bind(h *Handler) {
	ts.h = h
	h.addBuiltinTools(ts.server)
	h.addDocumentTools(ts.server)
}

func (ts *toolServer) handler() http.Handler {
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return ts.server }, nil)
}

func (ts *toolServer) close() { ts.cancel() }

// watch follows a plugin's tool list until ctx ends. A plugin that cannot
// watch (NotSupported) keeps its initial list.
func (ts *toolServer) watch(ctx context.Context, src ToolSource, w tools.Watcher) {
	err := w.WatchTools(ctx, func(list []tools.Tool) { ts.sync(src, list) })
	if err != nil && status.CodeOf(err) != status.NotSupported && ctx.Err() == nil && ts.h != nil {
		ts.h.audit("tool_watch", src.Name, src.Name, time.Now(), err)
	}
}

// sync replaces the tools a source registered with list. The MCP server
// notifies connected agents (notifications/tools/list_changed).
func (ts *toolServer) sync(src ToolSource, list []tools.Tool) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	old := ts.bySource[src.Name]
	for _, n := range old {
		delete(ts.owner, n)
	}
	if len(old) > 0 {
		ts.server.RemoveTools(old...)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	var names []string
	for _, t := range list {
		name := t.Name
		if o, taken := ts.owner[name]; taken && o != src.Name {
			name = src.Name + "_" + t.Name
		}
		ts.owner[name] = src.Name
		names = append(names, name)
		ts.server.AddTool(mcpTool(name, t), ts.callPlugin(src, t))
	}
	ts.bySource[src.Name] = names
}

func mcpTool(name string, t tools.Tool) *mcp.Tool {
	schema := json.RawMessage(t.InputSchema)
	if len(schema) == 0 {
		schema = json.RawMessage(`{"type":"object","properties":{}}`)
	}
	mt := &mcp.Tool{Name: name, Description: t.Description, InputSchema: schema}
	if len(t.OutputSchema) > 0 {
		mt.OutputSchema = json.RawMessage(t.OutputSchema)
	}
	if t.ReadOnly || t.Destructive {
		ro, destructive := t.ReadOnly, t.Destructive
		mt.Annotations = &mcp.ToolAnnotations{ReadOnlyHint: ro, DestructiveHint: &destructive}
	}
	return mt
}

// callPlugin forwards an MCP call to the plugin under the tool's own name,
// with the caller's identity from the listener.
func (ts *toolServer) callPlugin(src ToolSource, t tools.Tool) mcp.ToolHandler {
	pluginName := t.Name
	return func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		start := time.Now()
		if t.Destructive {
			if err := ts.h.checkToolPaths(req.Params.Arguments); err != nil {
				ts.h.audit("tool_call", pluginName, src.Name, start, err, req.Params.Arguments)
				return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: err.Error()}}}, nil
			}
		}
		id := ts.h.cfg.Identity
		res, err := src.Provider.CallTool(ctx, &tools.CallRequest{
			Name: pluginName, Arguments: req.Params.Arguments,
			Context: tools.CallContext{Sandbox: id.Sandbox, Agent: id.Agent, Session: sessionOf(req)},
		})
		if err == nil && res.IsError {
			ts.h.audit("tool_call", pluginName, src.Name, start, fmt.Errorf("tool reported an error"), req.Params.Arguments)
		} else {
			ts.h.audit("tool_call", pluginName, src.Name, start, err, req.Params.Arguments)
		}
		if err != nil {
			// A failed call is a tool result the model can read, not a
			// protocol error that would end the agent's turn.
			return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: err.Error()}}}, nil
		}
		return toMCPResult(res), nil
	}
}

func sessionOf(req *mcp.CallToolRequest) string {
	if req.Session != nil {
		return req.Session.ID()
	}
	return ""
}

func toMCPResult(res *tools.CallResult) *mcp.CallToolResult {
	out := &mcp.CallToolResult{IsError: res.IsError}
	for _, c := range res.Content {
		switch {
		case c.Image != nil:
			out.Content = append(out.Content, &mcp.ImageContent{MIMEType: c.Image.MIMEType, Data: c.Image.Data})
		case c.Resource != nil:
			rc := &mcp.ResourceContents{URI: c.Resource.URI, MIMEType: c.Resource.MIMEType}
			if isText(c.Resource.MIMEType) {
				rc.Text = string(c.Resource.Data)
			} else {
				rc.Blob = c.Resource.Data
			}
			out.Content = append(out.Content, &mcp.EmbeddedResource{Resource: rc})
		default:
			out.Content = append(out.Content, &mcp.TextContent{Text: c.Text})
		}
	}
	if len(res.Structured) > 0 {
		out.StructuredContent = json.RawMessage(res.Structured)
	}
	if len(out.Content) == 0 {
		out.Content = []mcp.Content{&mcp.TextContent{Text: ""}}
	}
	return out
}

func isText(mime string) bool {
	return len(mime) >= 5 && mime[:5] == "text/" || mime == "application/json"
}
