package anthropic

import (
	"encoding/json"
	"net/http"

	"github.com/nemoclave/nemoclave/sdk/llm"
	"github.com/nemoclave/nemoclave/sdk/status"
)

// StopReason maps a neutral finish reason to Anthropic's stop_reason.
func StopReason(finish string) string {
	switch finish {
	case llm.FinishLength:
		return "max_tokens"
	case llm.FinishToolCalls:
		return "tool_use"
	case llm.FinishContentFilter:
		return "refusal"
	}
	return "end_turn"
}

// FinishReason maps Anthropic's stop_reason to the neutral vocabulary.
func FinishReason(stop string) string {
	switch stop {
	case "max_tokens":
		return llm.FinishLength
	case "tool_use":
		return llm.FinishToolCalls
	case "refusal":
		return llm.FinishContentFilter
	case "":
		return ""
	}
	return llm.FinishStop
}

// EncodeUsage converts neutral usage (cached tokens inside the input) to
// Anthropic's (cached reads beside it).
func EncodeUsage(u llm.Usage) Usage {
	return Usage{InputTokens: u.InputTokens - u.CachedInputTokens, OutputTokens: u.OutputTokens, CacheReadInputTokens: u.CachedInputTokens}
}

// DecodeUsage is the inverse of EncodeUsage; cache writes count as input.
func DecodeUsage(u Usage) llm.Usage {
	return llm.Usage{
		InputTokens:       u.InputTokens + u.CacheReadInputTokens + u.CacheCreationInputTokens,
		OutputTokens:      u.OutputTokens,
		CachedInputTokens: u.CacheReadInputTokens,
	}
}

// EncodeResponse converts a neutral answer to a Messages response. model
// is the name the caller asked for.
func EncodeResponse(r *llm.ChatResponse, model string) *Response {
	out := &Response{ID: r.ID, Type: "message", Role: "assistant", Model: model, Content: []Block{}, Usage: EncodeUsage(r.Usage)}
	if text := r.Message.Text(); text != "" {
		out.Content = append(out.Content, Block{Type: "text", Text: text})
	}
	for _, tc := range r.Message.ToolCalls {
		out.Content = append(out.Content, Block{Type: "tool_use", ID: tc.ID, Name: tc.Name, Input: ToolInput(tc.Arguments)})
	}
	stop := StopReason(r.FinishReason)
	if stop == "end_turn" && len(r.Message.ToolCalls) > 0 {
		stop = "tool_use"
	}
	out.StopReason = &stop
	return out
}

// DecodeResponse converts a Messages response.
func DecodeResponse(w *Response) *llm.ChatResponse {
	out := &llm.ChatResponse{ID: w.ID, Model: w.Model, Message: llm.Message{Role: llm.RoleAssistant}, Usage: DecodeUsage(w.Usage)}
	if w.StopReason != nil {
		out.FinishReason = FinishReason(*w.StopReason)
	}
	for _, b := range w.Content {
		switch b.Type {
		case "text":
			out.Message.Content = append(out.Message.Content, llm.Text(b.Text))
		case "tool_use":
			args := string(b.Input)
			if args == "" {
				args = "{}"
			}
			out.Message.ToolCalls = append(out.Message.ToolCalls, llm.ToolCall{ID: b.ID, Name: b.Name, Arguments: args})
		}
	}
	return out
}

// ErrorFor builds the error body for an HTTP status.
func ErrorFor(httpStatus int, message string) *ErrorBody {
	return &ErrorBody{Type: "error", Error: ErrorInfo{Type: ErrorType(httpStatus), Message: message}}
}

// ErrorType names Anthropic's error type for an HTTP status.
func ErrorType(httpStatus int) string {
	switch httpStatus {
	case http.StatusBadRequest, http.StatusUnprocessableEntity, http.StatusRequestEntityTooLarge:
		return "invalid_request_error"
	case http.StatusUnauthorized:
		return "authentication_error"
	case http.StatusForbidden:
		return "permission_error"
	case http.StatusNotFound:
		return "not_found_error"
	case http.StatusTooManyRequests:
		return "rate_limit_error"
	case http.StatusServiceUnavailable, 529:
		return "overloaded_error"
	}
	return "api_error"
}

// StatusCode maps a Messages API HTTP status to an SDK error code.
func StatusCode(httpStatus int) status.Code {
	switch {
	case httpStatus == http.StatusBadRequest, httpStatus == http.StatusRequestEntityTooLarge, httpStatus == http.StatusUnprocessableEntity:
		return status.InvalidArgument
	case httpStatus == http.StatusUnauthorized:
		return status.Unauthenticated
	case httpStatus == http.StatusForbidden:
		return status.PermissionDenied
	case httpStatus == http.StatusNotFound:
		return status.NotFound
	case httpStatus == http.StatusTooManyRequests:
		return status.RateLimited
	case httpStatus == http.StatusGatewayTimeout, httpStatus == http.StatusRequestTimeout:
		return status.DeadlineExceeded
	case httpStatus >= 500:
		return status.Unavailable
	}
	return status.Unknown
}

// StatusCodeOfType maps an error event's type (mid-stream errors carry no
// HTTP status) to an SDK error code.
func StatusCodeOfType(t string) status.Code {
	switch t {
	case "invalid_request_error":
		return status.InvalidArgument
	case "authentication_error":
		return status.Unauthenticated
	case "permission_error":
		return status.PermissionDenied
	case "not_found_error":
		return status.NotFound
	case "rate_limit_error":
		return status.RateLimited
	case "overloaded_error", "api_error":
		return status.Unavailable
	}
	return status.Unknown
}

func marshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // plain structs only
	}
	return b
}
