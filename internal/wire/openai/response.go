package openai

import (
	"github.com/nemoclave/nemoclave/sdk/llm"
)

// EncodeResponse converts a neutral answer to a Chat Completions body.
// model is the name the caller asked for, so an agent sees its own alias.
func EncodeResponse(r *llm.ChatResponse, model string, created int64) *ChatResponse {
	msg := ResponseMessage{Role: "assistant"}
	if len(r.Message.Content) > 0 || len(r.Message.ToolCalls) == 0 {
		s := r.Message.Text()
		msg.Content = &s
	}
	for _, tc := range r.Message.ToolCalls {
		msg.ToolCalls = append(msg.ToolCalls, ToolCall{ID: tc.ID, Type: "function", Function: FunctionCall{Name: tc.Name, Arguments: tc.Arguments}})
	}
	return &ChatResponse{
		ID: r.ID, Object: "chat.completion", Created: created, Model: model,
		Choices: []Choice{{Message: msg, FinishReason: finishOrStop(r.FinishReason)}},
		Usage:   EncodeUsage(r.Usage),
	}
}

func finishOrStop(f string) string {
	if f == "" {
		return llm.FinishStop
	}
	return f
}

// EncodeUsage converts neutral usage.
func EncodeUsage(u llm.Usage) *Usage {
	out := &Usage{PromptTokens: u.InputTokens, CompletionTokens: u.OutputTokens, TotalTokens: u.InputTokens + u.OutputTokens}
	if u.CachedInputTokens > 0 {
		out.PromptTokensDetails = &PromptDetails{CachedTokens: u.CachedInputTokens}
	}
	return out
}

// DecodeUsage converts wire usage; nil stays nil.
func DecodeUsage(u *Usage) *llm.Usage {
	if u == nil {
		return nil
	}
	out := &llm.Usage{InputTokens: u.PromptTokens, OutputTokens: u.CompletionTokens}
	if u.PromptTokensDetails != nil {
		out.CachedInputTokens = u.PromptTokensDetails.CachedTokens
	}
	return out
}

// DecodeResponse converts a provider's Chat Completions body.
func DecodeResponse(w *ChatResponse) *llm.ChatResponse {
	out := &llm.ChatResponse{ID: w.ID, Model: w.Model, Message: llm.Message{Role: llm.RoleAssistant}}
	if len(w.Choices) > 0 {
		c := w.Choices[0]
		out.FinishReason = c.FinishReason
		if c.Message.Content != nil && *c.Message.Content != "" {
			out.Message.Content = []llm.ContentPart{llm.Text(*c.Message.Content)}
		}
		for _, tc := range c.Message.ToolCalls {
			out.Message.ToolCalls = append(out.Message.ToolCalls, llm.ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments})
		}
	}
	if u := DecodeUsage(w.Usage); u != nil {
		out.Usage = *u
	}
	return out
}

// DecodeChunk converts one provider stream chunk.
func DecodeChunk(w *ChatChunk) *llm.ChatChunk {
	out := &llm.ChatChunk{ID: w.ID, Model: w.Model, Usage: DecodeUsage(w.Usage)}
	for _, c := range w.Choices {
		if c.Index != 0 {
			continue
		}
		if c.Delta.Content != nil {
			out.DeltaText = *c.Delta.Content
		}
		if c.FinishReason != nil {
			out.FinishReason = *c.FinishReason
		}
		for i, tc := range c.Delta.ToolCalls {
			idx := i
			if tc.Index != nil {
				idx = *tc.Index
			}
			out.ToolCalls = append(out.ToolCalls, llm.ToolCallDelta{Index: idx, ID: tc.ID, Name: tc.Function.Name, ArgumentsDelta: tc.Function.Arguments})
		}
	}
	return out
}

// ChunkEncoder turns neutral chunks into Chat Completions stream chunks
// for one response: the first carries the assistant role, a chunk with
// usage becomes a separate usage-only chunk when the caller asked for it.
type ChunkEncoder struct {
	ID           string
	Model        string
	Created      int64
	IncludeUsage bool
	started      bool
}

// Encode returns the wire chunks (zero, one or two) for c.
func (e *ChunkEncoder) Encode(c *llm.ChatChunk) []*ChatChunk {
	id := e.ID
	if id == "" {
		id = c.ID
		e.ID = id
	}
	var out []*ChatChunk
	if c.DeltaText != "" || len(c.ToolCalls) > 0 || c.FinishReason != "" || !e.started {
		ch := ChunkChoice{}
		if !e.started {
			ch.Delta.Role = "assistant"
			e.started = true
		}
		if c.DeltaText != "" || (ch.Delta.Role != "" && len(c.ToolCalls) == 0) {
			s := c.DeltaText
			ch.Delta.Content = &s
		}
		for _, d := range c.ToolCalls {
			idx := d.Index
			tc := ToolCall{Index: &idx, ID: d.ID, Function: FunctionCall{Name: d.Name, Arguments: d.ArgumentsDelta}}
			if d.ID != "" {
				tc.Type = "function"
			}
			ch.Delta.ToolCalls = append(ch.Delta.ToolCalls, tc)
		}
		if c.FinishReason != "" {
			f := c.FinishReason
			ch.FinishReason = &f
		}
		out = append(out, &ChatChunk{ID: id, Object: "chat.completion.chunk", Created: e.Created, Model: e.Model, Choices: []ChunkChoice{ch}})
	}
	if c.Usage != nil && e.IncludeUsage {
		out = append(out, &ChatChunk{ID: id, Object: "chat.completion.chunk", Created: e.Created, Model: e.Model, Choices: []ChunkChoice{}, Usage: EncodeUsage(*c.Usage)})
	}
	return out
}
