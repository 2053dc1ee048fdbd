package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/nemoclave/nemoclave/sandbox/local"
	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/schema"
	"github.com/nemoclave/nemoclave/sdk/status"
	"github.com/nemoclave/nemoclave/sdk/tools"
)

const version = "0.1.0"

type mcpPlugin struct {
	plugin.Base
	changes   *broadcast
	sandboxes *localSandboxes

	mu sync.RWMutex
	up *upstream
}

func newPlugin() *mcpPlugin {
	return &mcpPlugin{changes: newBroadcast(), sandboxes: &localSandboxes{}}
}

var (
	_ tools.Provider = (*mcpPlugin)(nil)
	_ tools.Watcher  = (*mcpPlugin)(nil)
)

func (*mcpPlugin) Info() plugin.Info {
	return plugin.Info{
		Name:        "tools-mcp",
		Version:     version,
		Description: "Import an MCP server (stdio command or streamable-HTTP URL) as a tools plugin.",
		Kinds:       []plugin.Kind{plugin.KindTools},
	}
}

func (*mcpPlugin) ConfigSchema() *schema.Schema {
	return &schema.Schema{Block: schema.Block{
		Description: "One MCP server: set command (stdio) or url (streamable HTTP). A stdio server needs an explicit sandbox choice.",
		Attributes: []schema.Attribute{
			{Name: "command", Type: "list(string)", Description: `The stdio server's command line, e.g. ["npx", "-y", "@modelcontextprotocol/server-filesystem"].`},
			{Name: "args", Type: "list(string)", Description: "Arguments appended to command."},
			{Name: "env", Type: "map(string)", Description: "Variables added to the stdio server's environment (the plugin's own allow-listed environment is inherited)."},
			{Name: "dir", Type: "string", Description: "Working directory of the stdio server (default: the plugin's)."},
			{Name: "sandbox", Type: "string", Default: json.RawMessage(`"local"`), Description: `For command: "local" runs the server in a sandbox of its own (local driver; the server does not start if none can be made); "inherit" inside this plugin's own sandbox (refused if the plugin is not confined); "none" unconfined.`},
			{Name: "read_only", Type: "list(string)", Description: `sandbox = "local": host paths the server may read (at the same path), besides /usr, /bin, /sbin, /lib, /lib64 and /etc.`},
			{Name: "workspace", Type: "string", Description: `sandbox = "local": host directory mounted at /workspace (default: an empty scratch directory).`},
			{Name: "workspace_writable", Type: "bool", Default: json.RawMessage("false"), Description: `sandbox = "local": let the server write to workspace.`},
			{Name: "memory_mb", Type: "number", Default: json.RawMessage("1024"), Description: `sandbox = "local": memory limit of the server's sandbox.`},
			{Name: "allow_unlimited", Type: "bool", Default: json.RawMessage("false"), Description: `sandbox = "local": start even where cgroup limits cannot be applied.`},
			{Name: "url", Type: "string", Description: "Endpoint of a streamable-HTTP MCP server, reached through the egress proxy."},
			{Name: "headers", Type: "map(string)", Sensitive: true, Description: "HTTP headers sent to url."},
			{Name: "bearer_token", Type: "string", Credential: true, Sensitive: true, Description: `credential("NAME") sent to url as Authorization: Bearer.`},
			{Name: "tool_prefix", Type: "string", Default: json.RawMessage(`""`), Description: "Prefix for every tool name, to keep several servers' tools apart."},
			{Name: "timeout", Type: "string", Default: json.RawMessage(`"120s"`), Description: "Bound on one tool call (Go duration)."},
		},
	}}
}

func (*mcpPlugin) ValidateConfig(_ context.Context, raw json.RawMessage) []plugin.Diagnostic {
	c, err := parseConfig(raw)
	if err != nil {
		return []plugin.Diagnostic{plugin.Errorf(nil, "%v", err)}
	}
	return c.validate()
}

// Configure records the server to import; it connects on first use, so a
// slow or absent server does not fail the blueprint's start.
func (p *mcpPlugin) Configure(_ context.Context, cfg plugin.Config, _ plugin.Host) error {
	c, err := parseConfig(cfg.JSON) // the SDK ran ValidateConfig already
	if err != nil {
		return err
	}
	p.mu.Lock()
	old := p.up
	p.up = newUpstream(c, p.changes, cfg.StateDir, p.sandboxes)
	p.mu.Unlock()
	if old != nil {
		old.close()
	}
	return nil
}

func (p *mcpPlugin) upstream() (*upstream, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.up == nil {
		return nil, status.Errorf(status.Unavailable, "tools-mcp is not configured yet")
	}
	return p.up, nil
}

func (p *mcpPlugin) ListTools(ctx context.Context) ([]tools.Tool, error) {
	up, err := p.upstream()
	if err != nil {
		return nil, err
	}
	cs, err := up.session(ctx)
	if err != nil {
		return nil, err
	}
	var out []tools.Tool
	for t, err := range cs.Tools(ctx, nil) {
		if err != nil {
			return nil, status.Errorf(status.Unavailable, "list the MCP server's tools: %v", err)
		}
		tt, err := toolFromMCP(up.cfg.ToolPrefix, t)
		if err != nil {
			return nil, status.Errorf(status.Internal, "%v", err)
		}
		out = append(out, tt)
	}
	return out, nil
}

func (p *mcpPlugin) CallTool(ctx context.Context, req *tools.CallRequest) (*tools.CallResult, error) {
	up, err := p.upstream()
	if err != nil {
		return nil, err
	}
	name, ok := strings.CutPrefix(req.Name, up.cfg.ToolPrefix)
	if !ok {
		return nil, status.Errorf(status.NotFound, "tool %q: this server's tools all start with %q", req.Name, up.cfg.ToolPrefix)
	}
	// An unknown name is NotFound for the host, not a tool error; the list
	// is cached by the MCP client and invalidated on list_changed.
	list, err := p.ListTools(ctx)
	if err != nil {
		return nil, err
	}
	if !hasTool(list, req.Name) {
		return nil, status.Errorf(status.NotFound, "tool %q: the MCP server does not offer it (list the tools again)", req.Name)
	}
	cs, err := up.session(ctx)
	if err != nil {
		return nil, err
	}
	args := req.Arguments
	if len(args) == 0 {
		args = json.RawMessage("{}")
	}
	cctx, cancel := context.WithTimeout(ctx, up.cfg.callTimeout)
	defer cancel()
	res, err := cs.CallTool(cctx, &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		return callError(ctx, cctx, up, req.Name, err)
	}
	return resultFromMCP(res)
}

// callError sorts a failed call: a JSON-RPC error from the server (bad
// arguments, say) is something the model can correct, so it becomes a tool
// error; a dead connection or a timeout is the plugin's failure.
func callError(ctx, cctx context.Context, up *upstream, name string, err error) (*tools.CallResult, error) {
	var werr *jsonrpc.Error
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case cctx.Err() != nil:
		return nil, status.Errorf(status.DeadlineExceeded, "tool %q did not answer within timeout (%s)", name, up.cfg.Timeout)
	case errors.As(err, &werr):
		return tools.ErrorResult(fmt.Sprintf("the MCP server rejected the call: %s", werr.Message)), nil
	}
	return nil, status.Errorf(status.Unavailable, "call %q on the MCP server: %v", name, err)
}

func hasTool(list []tools.Tool, name string) bool {
	for _, t := range list {
		if t.Name == name {
			return true
		}
	}
	return false
}

// WatchTools sends the tool list now and again whenever the server says it
// changed, the server is restarted, or the plugin is reconfigured; repeats
// of an unchanged list are not sent.
func (p *mcpPlugin) WatchTools(ctx context.Context, fn func([]tools.Tool)) error {
	var last []tools.Tool
	first := true
	for {
		changed := p.changes.wait()
		list, err := p.ListTools(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		if first || !reflect.DeepEqual(list, last) {
			fn(list)
			first, last = false, list
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func main() {
	// The local sandbox driver re-executes this binary as its init stage.
	local.MaybeInit()
	plugin.Serve(newPlugin())
}
