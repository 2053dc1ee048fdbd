package replayplugin

import (
	"strings"

	"github.com/nemoclave/nemoclave/sdk/llm"
)

// lastUserAndStep returns the last user message's text and the number of
// assistant messages after it.
func lastUserAndStep(req *llm.ChatRequest) (string, int) {
	last, step := -1, 0
	for i, m := range req.Messages {
		if m.Role == llm.RoleUser {
			last = i
		}
	}
	if last < 0 {
		return "", 0
	}
	for _, m := range req.Messages[last+1:] {
		if m.Role == llm.RoleAssistant {
			step++
		}
	}
	return req.Messages[last].Text(), step
}

// lastToolResult is the text of the last tool message.
func lastToolResult(req *llm.ChatRequest) string {
	for i := len(req.Messages) - 1; i >= 0; i-- {
		if req.Messages[i].Role == llm.RoleTool {
			return req.Messages[i].Text()
		}
	}
	return ""
}

// loose normalises text for last_user matching: lower case, white space
// collapsed, trailing punctuation dropped.
func loose(s string) string {
	return strings.TrimRight(strings.ToLower(collapse(s)), " ?!.")
}

// find picks the interaction for req: an exact fingerprint first, then a
// last_user match, then last_user_contains, then a default, each at the
// request's step; the first in file order wins within a rule.
func (c *Cassette) find(req *llm.ChatRequest, fp string) *Interaction {
	user, step := lastUserAndStep(req)
	u := loose(user)
	stepOK := func(m Match) bool { return m.Step == nil || *m.Step == step }
	rules := []func(m Match) bool{
		func(m Match) bool { return m.Fingerprint != "" && m.Fingerprint == fp },
		func(m Match) bool { return m.LastUser != "" && loose(m.LastUser) == u && stepOK(m) },
		func(m Match) bool {
			return m.LastUserContains != "" && strings.Contains(u, loose(m.LastUserContains)) && stepOK(m)
		},
		func(m Match) bool { return m.Default && stepOK(m) },
	}
	for _, rule := range rules {
		for i := range c.Interactions {
			if rule(c.Interactions[i].Match) {
				return &c.Interactions[i]
			}
		}
	}
	return nil
}

// toolName maps a recorded tool name onto the request's tools.
func toolName(recorded string, tools []llm.Tool) string {
	var suffixed []string
	for _, t := range tools {
		if t.Name == recorded {
			return recorded
		}
		for _, sep := range []string{"__", "_", ".", "/", ":", "-"} {
			if strings.HasSuffix(t.Name, sep+recorded) {
				suffixed = append(suffixed, t.Name)
				break
			}
		}
	}
	if len(suffixed) == 1 {
		return suffixed[0]
	}
	return recorded
}

// render fills the templates of a response for req.
func render(it *Interaction, req *llm.ChatRequest, id string) *llm.ChatResponse {
	user, _ := lastUserAndStep(req)
	fill := strings.NewReplacer("{{last_user}}", user, "{{last_tool_result}}", lastToolResult(req))
	r := it.Response
	out := &llm.ChatResponse{ID: id, Model: req.Model, FinishReason: r.FinishReason, Message: llm.Message{Role: llm.RoleAssistant}}
	if r.Text != "" {
		out.Message.Content = []llm.ContentPart{llm.Text(fill.Replace(r.Text))}
	}
	for i, tc := range r.ToolCalls {
		cid := tc.ID
		if cid == "" {
			cid = id + "-call-" + string(rune('a'+i))
		}
		out.Message.ToolCalls = append(out.Message.ToolCalls, llm.ToolCall{ID: cid, Name: toolName(tc.Name, req.Tools), Arguments: tc.Arguments})
	}
	if out.FinishReason == "" {
		out.FinishReason = llm.FinishStop
		if len(out.Message.ToolCalls) > 0 {
			out.FinishReason = llm.FinishToolCalls
		}
	}
	if r.Usage != nil {
		out.Usage = llm.Usage{InputTokens: r.Usage.InputTokens, OutputTokens: r.Usage.OutputTokens, CachedInputTokens: r.Usage.CachedInputTokens}
	} else {
		in := len(req.System)
		for _, m := range req.Messages {
			in += len(m.Text())
		}
		out.Usage = llm.Usage{InputTokens: int64(in/4 + 1), OutputTokens: int64(len(out.Message.Text())/4 + 1)}
	}
	return out
}

// chunks cuts a rendered response into stream chunks: recorded chunks
// when the interaction has them (templates filled), else the text a few
// words at a time and each tool call in one delta; the last chunk carries
// the finish reason and usage.
func chunks(it *Interaction, resp *llm.ChatResponse, req *llm.ChatRequest) []*llm.ChatChunk {
	var out []*llm.ChatChunk
	if len(it.Chunks) > 0 {
		user, _ := lastUserAndStep(req)
		fill := strings.NewReplacer("{{last_user}}", user, "{{last_tool_result}}", lastToolResult(req))
		for _, c := range it.Chunks {
			ch := &llm.ChatChunk{ID: resp.ID, Model: resp.Model, DeltaText: fill.Replace(c.Text), FinishReason: c.FinishReason}
			for _, d := range c.ToolCalls {
				name := d.Name
				if name != "" {
					name = toolName(name, req.Tools)
				}
				ch.ToolCalls = append(ch.ToolCalls, llm.ToolCallDelta{Index: d.Index, ID: d.ID, Name: name, ArgumentsDelta: d.Arguments})
			}
			if c.Usage != nil {
				ch.Usage = &llm.Usage{InputTokens: c.Usage.InputTokens, OutputTokens: c.Usage.OutputTokens, CachedInputTokens: c.Usage.CachedInputTokens}
			}
			out = append(out, ch)
		}
		return out
	}
	words := strings.SplitAfter(resp.Message.Text(), " ")
	for i := 0; i < len(words); i += 3 {
		if t := strings.Join(words[i:min(i+3, len(words))], ""); t != "" {
			out = append(out, &llm.ChatChunk{ID: resp.ID, Model: resp.Model, DeltaText: t})
		}
	}
	for i, tc := range resp.Message.ToolCalls {
		out = append(out, &llm.ChatChunk{ID: resp.ID, Model: resp.Model, ToolCalls: []llm.ToolCallDelta{{Index: i, ID: tc.ID, Name: tc.Name, ArgumentsDelta: tc.Arguments}}})
	}
	u := resp.Usage
	return append(out, &llm.ChatChunk{ID: resp.ID, Model: resp.Model, FinishReason: resp.FinishReason, Usage: &u})
}
