package tools

import (
	"context"
	"encoding/json"

	"github.com/nemoclave/nemoclave/sdk/status"
)

// Provider serves tools to agents. Implementations must be safe for
// concurrent use: several agents may call tools at once.
type Provider interface {
	// ListTools reports the tools currently available.
	ListTools(ctx context.Context) ([]Tool, error)
	// CallTool runs one tool. A tool that ran and failed in a way the
	// model should see (file not found, bad arguments) returns a result
	// with IsError set, so the model can correct itself; a Go error is
	// for failures of the plugin itself and is not shown to the model.
	// An unknown tool name is status.NotFound.
	CallTool(ctx context.Context, req *CallRequest) (*CallResult, error)
}

// Watcher is implemented by providers whose tool list changes while they
// run (an MCP server that announces list_changed). It is optional and
// discovered by type assertion: the host falls back to ListTools when a
// plugin does not implement it.
type Watcher interface {
	// WatchTools calls fn with the full tool list, first with the current
	// list and then after every change, until ctx is done (then it returns
	// ctx.Err()) or watching fails. fn must not block for long.
	WatchTools(ctx context.Context, fn func([]Tool)) error
}

// Tool describes one tool.
type Tool struct {
	Name string
	// Description is how the model decides when to use the tool; sdktest
	// requires one.
	Description string
	// InputSchema is the JSON Schema of the arguments; it must be an
	// object schema ({"type":"object",...}) because arguments are a JSON
	// object. Models see it verbatim, so descriptions in it matter.
	InputSchema json.RawMessage
	// OutputSchema optionally describes CallResult.Structured.
	OutputSchema json.RawMessage
	// ReadOnly tools do not change their environment; policy may allow
	// them without asking.
	ReadOnly bool
	// Destructive tools may delete or overwrite; policy may ask first.
	Destructive bool
}

// CallContext says on whose behalf a tool runs, so a plugin can keep
// per-session state or write per-sandbox audit logs.
type CallContext struct {
	Sandbox string
	Agent   string
	Session string
}

// CallRequest is one tool call.
type CallRequest struct {
	Name string
	// Arguments is the JSON object the model produced (nil means {}).
	Arguments json.RawMessage
	Context   CallContext
}

// Content is one item of a tool result: exactly one of Text, Image or
// Resource.
type Content struct {
	Text     string
	Image    *Blob
	Resource *Blob
}

// Blob is binary or addressed content: an image, or a resource such as a
// generated file.
type Blob struct {
	MIMEType string
	Data     []byte
	// URI addresses the resource (file:///workspace/out.csv) when Data is
	// not inlined.
	URI  string
	Name string
}

// TextContent returns a text content item.
func TextContent(s string) Content { return Content{Text: s} }

// CallResult is the outcome of a tool call.
type CallResult struct {
	Content []Content
	// IsError marks a tool-level failure the model should see.
	IsError bool
	// Structured is optional machine-readable output matching the tool's
	// OutputSchema.
	Structured json.RawMessage
}

// ErrorResult is a convenience for a tool-level failure shown to the model.
func ErrorResult(msg string) *CallResult {
	return &CallResult{Content: []Content{TextContent(msg)}, IsError: true}
}

// NotSupported can be embedded to satisfy Provider while implementing
// only part of it; each method returns status.ErrNotSupported.
type NotSupported struct{}

func (NotSupported) ListTools(context.Context) ([]Tool, error) {
	return nil, status.ErrNotSupported
}

func (NotSupported) CallTool(context.Context, *CallRequest) (*CallResult, error) {
	return nil, status.ErrNotSupported
}
