package llm

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/nemoclave/nemoclave/sdk/status"
)

// Provider is an LLM backend. Implementations must be safe for concurrent
// use: the gateway sends many agents' requests through one plugin.
//
// Errors should be classified with sdk/status so the gateway can decide
// whether to fall back: status.RateLimited and status.Unavailable try the
// next model, status.InvalidArgument goes back to the agent.
type Provider interface {
	// ListModels reports the models this provider serves. The gateway uses
	// it to check blueprint model names, so it should be cheap.
	ListModels(ctx context.Context) ([]Model, error)
	// Chat runs one completion and returns the whole answer.
	Chat(ctx context.Context, req *ChatRequest) (*ChatResponse, error)
	// ChatStream runs one completion and calls send for every chunk, in
	// order. When send returns an error the caller is gone: stop, and
	// return that error. Cancel provider work when ctx is done. The final
	// chunk should carry FinishReason and, when the provider reports it,
	// Usage, so that Accumulate(chunks) equals what Chat would return.
	ChatStream(ctx context.Context, req *ChatRequest, send func(*ChatChunk) error) error
}

// Roles of a Message. Providers with other vocabularies map to these.
const (
	RoleSystem    = "system"
	RoleUser      = "user"
	RoleAssistant = "assistant"
	// RoleTool carries a tool result; ToolCallID names the call it answers.
	RoleTool = "tool"
)

// Finish reasons. Providers map their own to these so the gateway and the
// agent need to know only one vocabulary.
const (
	FinishStop          = "stop"
	FinishLength        = "length"
	FinishToolCalls     = "tool_calls"
	FinishContentFilter = "content_filter"
)

// Model describes one model a provider serves.
type Model struct {
	ID      string
	OwnedBy string
	// ContextWindow in tokens; 0 when unknown.
	ContextWindow int64
	// Capabilities such as "tools", "vision", "streaming"; free-form so
	// providers can add more without an SDK release.
	Capabilities []string
}

// ContentPart is one part of a message: exactly one of Text or Image. The
// zero value is an empty text part.
type ContentPart struct {
	Text  string
	Image *Image
}

// Image is inline image data or a URL the provider fetches itself.
type Image struct {
	MIMEType string
	Data     []byte
	URL      string
}

// Text returns a text content part.
func Text(s string) ContentPart { return ContentPart{Text: s} }

// Message is one turn of a conversation.
type Message struct {
	Role    string
	Content []ContentPart
	// ToolCalls are the calls an assistant message asks for.
	ToolCalls []ToolCall
	// ToolCallID links a RoleTool message to the call it answers.
	ToolCallID string
	// Name optionally names the participant (some providers use it).
	Name string
}

// Text concatenates the message's text parts, ignoring images. Most
// providers take a plain string for text-only messages.
func (m Message) Text() string {
	var b strings.Builder
	for _, p := range m.Content {
		if p.Image == nil {
			b.WriteString(p.Text)
		}
	}
	return b.String()
}

// Tool is a function the model may call.
type Tool struct {
	Name        string
	Description string
	// Parameters is the JSON Schema of the arguments (an object schema).
	Parameters json.RawMessage
}

// ToolCall is a call the model made.
type ToolCall struct {
	ID   string
	Name string
	// Arguments is the JSON text the model produced. It is a string, not
	// json.RawMessage, because models do emit invalid JSON and the agent
	// must see exactly what was produced to repair it.
	Arguments string
}

// Usage counts tokens. CachedInputTokens is the part of InputTokens the
// provider served from its prompt cache (billed differently).
type Usage struct {
	InputTokens       int64
	OutputTokens      int64
	CachedInputTokens int64
}

// ChatRequest is one completion request.
type ChatRequest struct {
	Model string
	// System is the system prompt, kept apart from Messages because
	// providers disagree on where it goes.
	System   string
	Messages []Message
	Tools    []Tool
	// ToolChoice is "", "auto", "none", "required" or a tool name.
	ToolChoice string
	// Nil sampling parameters mean the provider's default, which is not
	// the same as zero.
	Temperature *float64
	TopP        *float64
	MaxTokens   *int64
	Stop        []string
	// User identifies the end user to the provider for abuse tracking.
	User string
	// Extra is a JSON object of provider-specific fields, passed through
	// untouched; providers ignore keys they do not know.
	Extra json.RawMessage
}

// ChatResponse is a complete answer.
type ChatResponse struct {
	ID           string
	Model        string
	Message      Message
	FinishReason string
	// Usage is zero when the provider did not report it.
	Usage Usage
}

// ChatChunk is one streamed increment.
type ChatChunk struct {
	ID        string
	Model     string
	DeltaText string
	ToolCalls []ToolCallDelta
	// FinishReason is set on the last chunk.
	FinishReason string
	// Usage is set (usually on the last chunk) when the provider reports
	// it; nil means not reported, which differs from zero tokens.
	Usage *Usage
}

// ToolCallDelta is an increment of the tool call at Index: the first delta
// of a call carries ID and Name, later ones append to the arguments.
type ToolCallDelta struct {
	Index          int
	ID             string
	Name           string
	ArgumentsDelta string
}

// NotSupported can be embedded to satisfy Provider while implementing
// only part of it; each method returns status.ErrNotSupported.
type NotSupported struct{}

func (NotSupported) ListModels(context.Context) ([]Model, error) {
	return nil, status.ErrNotSupported
}

func (NotSupported) Chat(context.Context, *ChatRequest) (*ChatResponse, error) {
	return nil, status.ErrNotSupported
}

func (NotSupported) ChatStream(context.Context, *ChatRequest, func(*ChatChunk) error) error {
	return status.ErrNotSupported
}
