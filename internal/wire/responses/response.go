package responses

import (
	"encoding/json"

	"github.com/nemoclave/nemoclave/sdk/llm"
)

// NewResponse is the response object for req with no output yet
// (status in_progress), echoing the request's settings as the API does.
func NewResponse(id, model string, created int64, req *Request) *Response {
	r := &Response{
		ID: id, Object: "response", CreatedAt: created, Status: "in_progress", Model: model,
		Output: []OutputItem{}, Tools: []Tool{}, ToolChoice: json.RawMessage(`"auto"`), ParallelToolCalls: true,
		Text: json.RawMessage(`{"format":{"type":"text"}}`), Store: true, Metadata: json.RawMessage(`{}`),
		Reasoning: json.RawMessage(`{"effort":null,"summary":null}`),
	}
	if req == nil {
		return r
	}
	r.Instructions, r.MaxOutputTokens, r.Temperature, r.TopP = req.Instructions, req.MaxOutputTokens, req.Temperature, req.TopP
	if len(req.Tools) > 0 {
		r.Tools = req.Tools
	}
	if len(req.ToolChoice) > 0 {
		r.ToolChoice = req.ToolChoice
	}
	if req.ParallelToolCalls != nil {
		r.ParallelToolCalls = *req.ParallelToolCalls
	}
	if len(req.Text) > 0 {
		r.Text = req.Text
	}
	if len(req.Reasoning) > 0 {
		r.Reasoning = req.Reasoning
	}
	if req.Store != nil {
		r.Store = *req.Store
	}
	if len(req.Metadata) > 0 {
		r.Metadata = req.Metadata
	}
	if req.PreviousResponseID != "" {
		p := req.PreviousResponseID
		r.PreviousResponseID = &p
	}
	if req.User != "" {
		u := req.User
		r.User = &u
	}
	return r
}

// Complete fills r from a neutral answer: output items, usage and the
// final status (incomplete when the answer was cut short).
func Complete(r *Response, resp *llm.ChatResponse, itemID func(prefix string) string) {
	r.Output = OutputOf(&resp.Message, itemID)
	r.Usage = UsageOf(resp.Usage)
	Finish(r, resp.FinishReason)
}

// Finish sets the final status for a finish reason.
func Finish(r *Response, finish string) {
	r.Status = "completed"
	switch finish {
	case llm.FinishLength:
		r.Status, r.IncompleteDetails = "incomplete", &Incomplete{Reason: "max_output_tokens"}
	case llm.FinishContentFilter:
		r.Status, r.IncompleteDetails = "incomplete", &Incomplete{Reason: "content_filter"}
	}
}

// OutputOf converts an assistant message to output items: its text as
// one message item, then one function_call item per tool call.
func OutputOf(m *llm.Message, itemID func(prefix string) string) []OutputItem {
	out := []OutputItem{}
	if text := m.Text(); text != "" || len(m.ToolCalls) == 0 {
		out = append(out, MessageItem(itemID("msg_"), text, "completed"))
	}
	for _, tc := range m.ToolCalls {
		out = append(out, CallItem(itemID("fc_"), tc.ID, tc.Name, tc.Arguments, "completed"))
	}
	return out
}

// MessageItem is an assistant message item with one output_text part.
func MessageItem(id, text, status string) OutputItem {
	parts := []OutputPart{{Type: "output_text", Text: text, Annotations: []any{}}}
	return OutputItem{Type: "message", ID: id, Status: status, Role: "assistant", Content: &parts}
}

// CallItem is a function_call item.
func CallItem(id, callID, name, args, status string) OutputItem {
	return OutputItem{Type: "function_call", ID: id, Status: status, CallID: callID, Name: name, Arguments: &args}
}

// UsageOf converts neutral usage.
func UsageOf(u llm.Usage) *Usage {
	return &Usage{InputTokens: u.InputTokens, InputTokensDetails: CachedDetail{CachedTokens: u.CachedInputTokens},
		OutputTokens: u.OutputTokens, TotalTokens: u.InputTokens + u.OutputTokens}
}

// MessagesOf turns output items back into the neutral assistant turn, for
// the history a later previous_response_id continues.
func MessagesOf(items []OutputItem) []llm.Message {
	m := llm.Message{Role: llm.RoleAssistant}
	for _, it := range items {
		switch it.Type {
		case "message":
			if it.Content != nil {
				for _, p := range *it.Content {
					if p.Text != "" {
						m.Content = append(m.Content, llm.Text(p.Text))
					}
				}
			}
		case "function_call":
			args := ""
			if it.Arguments != nil {
				args = *it.Arguments
			}
			m.ToolCalls = append(m.ToolCalls, llm.ToolCall{ID: it.CallID, Name: it.Name, Arguments: args})
		}
	}
	if len(m.Content) == 0 && len(m.ToolCalls) == 0 {
		return nil
	}
	return []llm.Message{m}
}
