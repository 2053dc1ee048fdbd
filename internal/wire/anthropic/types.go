package anthropic

import "encoding/json"

// Request is the body of POST /v1/messages. System is a string or an
// array of text blocks.
type Request struct {
	Model         string          `json:"model"`
	MaxTokens     int64           `json:"max_tokens"`
	System        json.RawMessage `json:"system,omitempty"`
	Messages      []Message       `json:"messages"`
	Tools         []Tool          `json:"tools,omitempty"`
	ToolChoice    *ToolChoice     `json:"tool_choice,omitempty"`
	Temperature   *float64        `json:"temperature,omitempty"`
	TopP          *float64        `json:"top_p,omitempty"`
	StopSequences []string        `json:"stop_sequences,omitempty"`
	Stream        bool            `json:"stream,omitempty"`
	Metadata      *Metadata       `json:"metadata,omitempty"`
}

var knownRequestFields = map[string]bool{
	"model": true, "max_tokens": true, "system": true, "messages": true, "tools": true, "tool_choice": true,
	"temperature": true, "top_p": true, "stop_sequences": true, "stream": true, "metadata": true,
}

// Metadata carries the end-user id.
type Metadata struct {
	UserID string `json:"user_id,omitempty"`
}

// Message is a user or assistant turn; Content is a string or blocks.
type Message struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// Block is one content block. Which fields are set depends on Type:
// text, image, tool_use, tool_result.
type Block struct {
	Type string `json:"type"`
	Text string `json:"text,omitempty"`
	// image
	Source *ImageSource `json:"source,omitempty"`
	// tool_use
	ID    string          `json:"id,omitempty"`
	Name  string          `json:"name,omitempty"`
	Input json.RawMessage `json:"input,omitempty"`
	// tool_result: Content is a string or text blocks.
	ToolUseID string          `json:"tool_use_id,omitempty"`
	Content   json.RawMessage `json:"content,omitempty"`
	IsError   bool            `json:"is_error,omitempty"`
}

// ImageSource is inline base64 data or a URL.
type ImageSource struct {
	Type      string `json:"type"`
	MediaType string `json:"media_type,omitempty"`
	Data      string `json:"data,omitempty"`
	URL       string `json:"url,omitempty"`
}

// Tool declares a client tool.
type Tool struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"input_schema"`
}

// ToolChoice is auto, any, tool (with Name) or none.
type ToolChoice struct {
	Type                   string `json:"type"`
	Name                   string `json:"name,omitempty"`
	DisableParallelToolUse bool   `json:"disable_parallel_tool_use,omitempty"`
}

// Response is a complete message.
type Response struct {
	ID           string  `json:"id"`
	Type         string  `json:"type"`
	Role         string  `json:"role"`
	Model        string  `json:"model"`
	Content      []Block `json:"content"`
	StopReason   *string `json:"stop_reason"`
	StopSequence *string `json:"stop_sequence"`
	Usage        Usage   `json:"usage"`
}

// Usage counts tokens. InputTokens excludes the cached parts, unlike the
// neutral type, where cached tokens are part of the input.
type Usage struct {
	InputTokens              int64 `json:"input_tokens"`
	OutputTokens             int64 `json:"output_tokens"`
	CacheReadInputTokens     int64 `json:"cache_read_input_tokens,omitempty"`
	CacheCreationInputTokens int64 `json:"cache_creation_input_tokens,omitempty"`
}

// StreamEvent is the union of the streaming events; Type selects which
// fields are meaningful.
type StreamEvent struct {
	Type         string     `json:"type"`
	Message      *Response  `json:"message,omitempty"`
	Index        *int       `json:"index,omitempty"`
	ContentBlock *Block     `json:"content_block,omitempty"`
	Delta        *Delta     `json:"delta,omitempty"`
	Usage        *Usage     `json:"usage,omitempty"`
	Error        *ErrorInfo `json:"error,omitempty"`
}

// Delta is a content_block_delta's or message_delta's payload.
type Delta struct {
	Type         string  `json:"type,omitempty"`
	Text         string  `json:"text,omitempty"`
	PartialJSON  string  `json:"partial_json,omitempty"`
	StopReason   *string `json:"stop_reason,omitempty"`
	StopSequence *string `json:"stop_sequence,omitempty"`
}

// ErrorBody is Anthropic's error envelope.
type ErrorBody struct {
	Type  string    `json:"type"`
	Error ErrorInfo `json:"error"`
}

// ErrorInfo describes an error: invalid_request_error,
// authentication_error, permission_error, not_found_error,
// rate_limit_error, api_error, overloaded_error.
type ErrorInfo struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// ModelList is the body of GET /v1/models.
type ModelList struct {
	Data    []ModelInfo `json:"data"`
	HasMore bool        `json:"has_more"`
	FirstID string      `json:"first_id,omitempty"`
	LastID  string      `json:"last_id,omitempty"`
}

// ModelInfo is one model entry.
type ModelInfo struct {
	ID          string `json:"id"`
	Type        string `json:"type"`
	DisplayName string `json:"display_name"`
	CreatedAt   string `json:"created_at"`
}
