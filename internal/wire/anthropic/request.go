package anthropic

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/nemoclave/nemoclave/sdk/llm"
)

// DefaultMaxTokens is sent when the neutral request has no limit, because
// the Messages API requires one.
const DefaultMaxTokens = 4096

// DecodeRequest parses a Messages body into the neutral request. Each
// tool_result block becomes its own tool message, in order, before any
// text of the same user turn.
func DecodeRequest(body []byte) (*llm.ChatRequest, bool, error) {
	var w Request
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, false, fmt.Errorf("request body is not a valid messages request: %w", err)
	}
	req := &llm.ChatRequest{Model: w.Model, Temperature: w.Temperature, TopP: w.TopP, Stop: w.StopSequences}
	if w.MaxTokens > 0 {
		mt := w.MaxTokens
		req.MaxTokens = &mt
	}
	if w.Metadata != nil {
		req.User = w.Metadata.UserID
	}
	sys, err := textOf(w.System)
	if err != nil {
		return nil, false, fmt.Errorf("system: %w", err)
	}
	req.System = sys
	if w.ToolChoice != nil {
		switch w.ToolChoice.Type {
		case "auto", "none":
			req.ToolChoice = w.ToolChoice.Type
		case "any":
			req.ToolChoice = "required"
		case "tool":
			req.ToolChoice = w.ToolChoice.Name
		default:
			return nil, false, fmt.Errorf("tool_choice.type %q is not one of auto, any, tool, none", w.ToolChoice.Type)
		}
	}
	for _, t := range w.Tools {
		req.Tools = append(req.Tools, llm.Tool{Name: t.Name, Description: t.Description, Parameters: t.InputSchema})
	}
	for i, m := range w.Messages {
		msgs, err := decodeMessage(m)
		if err != nil {
			return nil, false, fmt.Errorf("messages[%d]: %w", i, err)
		}
		req.Messages = append(req.Messages, msgs...)
	}
	if req.Extra, err = extraFields(body); err != nil {
		return nil, false, err
	}
	return req, w.Stream, nil
}

func decodeMessage(m Message) ([]llm.Message, error) {
	if m.Role == llm.RoleSystem {
		// Claude Code sends system turns inside messages; they keep their
		// place in the conversation.
		text, err := textOf(m.Content)
		if err != nil {
			return nil, err
		}
		return []llm.Message{{Role: llm.RoleSystem, Content: []llm.ContentPart{llm.Text(text)}}}, nil
	}
	if m.Role != llm.RoleUser && m.Role != llm.RoleAssistant {
		return nil, fmt.Errorf("role %q is not user, assistant or system", m.Role)
	}
	blocks, err := blocksOf(m.Content)
	if err != nil {
		return nil, err
	}
	var out []llm.Message
	main := llm.Message{Role: m.Role}
	for _, b := range blocks {
		switch b.Type {
		case "text":
			main.Content = append(main.Content, llm.Text(b.Text))
		case "image":
			img, err := imageOf(b.Source)
			if err != nil {
				return nil, err
			}
			main.Content = append(main.Content, llm.ContentPart{Image: img})
		case "tool_use":
			args := string(b.Input)
			if args == "" {
				args = "{}"
			}
			main.ToolCalls = append(main.ToolCalls, llm.ToolCall{ID: b.ID, Name: b.Name, Arguments: args})
		case "tool_result":
			text, err := textOf(b.Content)
			if err != nil {
				return nil, fmt.Errorf("tool_result content: %w", err)
			}
			if b.IsError && !strings.HasPrefix(text, "Error") {
				text = "Error: " + text
			}
			out = append(out, llm.Message{Role: llm.RoleTool, ToolCallID: b.ToolUseID, Content: []llm.ContentPart{llm.Text(text)}})
		case "thinking", "redacted_thinking":
			// Provider-internal reasoning does not translate; drop it.
		default:
			return nil, fmt.Errorf("content block type %q is not supported (text, image, tool_use, tool_result are)", b.Type)
		}
	}
	if len(main.Content) > 0 || len(main.ToolCalls) > 0 || len(out) == 0 {
		out = append(out, main)
	}
	return out, nil
}

func blocksOf(raw json.RawMessage) ([]Block, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		return []Block{{Type: "text", Text: s}}, nil
	}
	var blocks []Block
	if err := json.Unmarshal(raw, &blocks); err != nil {
		return nil, fmt.Errorf("content must be a string or an array of content blocks")
	}
	return blocks, nil
}

// textOf concatenates the text of a string-or-blocks value.
func textOf(raw json.RawMessage) (string, error) {
	blocks, err := blocksOf(raw)
	if err != nil {
		return "", err
	}
	var parts []string
	for _, b := range blocks {
		if b.Type == "text" {
			parts = append(parts, b.Text)
		}
	}
	return strings.Join(parts, "\n"), nil
}

func imageOf(s *ImageSource) (*llm.Image, error) {
	if s == nil {
		return nil, fmt.Errorf("image block without source")
	}
	switch s.Type {
	case "url":
		return &llm.Image{URL: s.URL}, nil
	case "base64":
		b, err := base64.StdEncoding.DecodeString(s.Data)
		if err != nil {
			return nil, fmt.Errorf("image data: %w", err)
		}
		return &llm.Image{MIMEType: s.MediaType, Data: b}, nil
	}
	return nil, fmt.Errorf("image source type %q is not base64 or url", s.Type)
}

func extraFields(body []byte) (json.RawMessage, error) {
	var all map[string]json.RawMessage
	if err := json.Unmarshal(body, &all); err != nil {
		return nil, fmt.Errorf("request body must be a JSON object: %w", err)
	}
	for k := range all {
		if knownRequestFields[k] {
			delete(all, k)
		}
	}
	if len(all) == 0 {
		return nil, nil
	}
	return json.Marshal(all)
}

// EncodeRequest builds the Messages body for req. Consecutive tool
// messages become one user turn of tool_result blocks, as the API requires.
func EncodeRequest(req *llm.ChatRequest, stream bool) ([]byte, error) {
	w := Request{Model: req.Model, Temperature: req.Temperature, TopP: req.TopP, StopSequences: req.Stop, Stream: stream}
	w.MaxTokens = DefaultMaxTokens
	if req.MaxTokens != nil {
		w.MaxTokens = *req.MaxTokens
	}
	if req.System != "" {
		w.System, _ = json.Marshal(req.System)
	}
	if req.User != "" {
		w.Metadata = &Metadata{UserID: req.User}
	}
	switch req.ToolChoice {
	case "":
	case "auto", "none":
		w.ToolChoice = &ToolChoice{Type: req.ToolChoice}
	case "required":
		w.ToolChoice = &ToolChoice{Type: "any"}
	default:
		w.ToolChoice = &ToolChoice{Type: "tool", Name: req.ToolChoice}
	}
	for _, t := range req.Tools {
		schema := t.Parameters
		if len(schema) == 0 {
			schema = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		w.Tools = append(w.Tools, Tool{Name: t.Name, Description: t.Description, InputSchema: schema})
	}
	for _, m := range req.Messages {
		blocks := encodeBlocks(m)
		role := m.Role
		if role == llm.RoleTool {
			role = llm.RoleUser
		}
		if role == llm.RoleSystem {
			if len(w.Messages) == 0 {
				// Leading system turns belong in the system prompt.
				w.System = appendSystem(w.System, m.Text())
				continue
			}
			content, _ := json.Marshal(m.Text())
			w.Messages = append(w.Messages, Message{Role: llm.RoleSystem, Content: content})
			continue
		}
		if n := len(w.Messages); n > 0 && w.Messages[n-1].Role == role && (m.Role == llm.RoleTool || role == llm.RoleUser) {
			// Merge into the previous user turn (tool results, then text).
			var prev []Block
			_ = json.Unmarshal(w.Messages[n-1].Content, &prev)
			w.Messages[n-1].Content, _ = json.Marshal(append(prev, blocks...))
			continue
		}
		content, _ := json.Marshal(blocks)
		w.Messages = append(w.Messages, Message{Role: role, Content: content})
	}
	if w.Messages == nil {
		w.Messages = []Message{} // the API wants an array, never null
	}
	body, err := json.Marshal(w)
	if err != nil {
		return nil, err
	}
	return mergeExtra(body, req.Extra)
}

// appendSystem adds text to a string system prompt.
func appendSystem(sys json.RawMessage, text string) json.RawMessage {
	var cur string
	if len(sys) > 0 {
		_ = json.Unmarshal(sys, &cur)
	}
	if cur != "" {
		cur += "\n\n"
	}
	b, _ := json.Marshal(cur + text)
	return b
}

func encodeBlocks(m llm.Message) []Block {
	if m.Role == llm.RoleTool {
		content, _ := json.Marshal(m.Text())
		return []Block{{Type: "tool_result", ToolUseID: m.ToolCallID, Content: content}}
	}
	var out []Block
	for _, p := range m.Content {
		if p.Image != nil {
			if len(p.Image.Data) > 0 {
				out = append(out, Block{Type: "image", Source: &ImageSource{Type: "base64", MediaType: p.Image.MIMEType, Data: base64.StdEncoding.EncodeToString(p.Image.Data)}})
			} else {
				out = append(out, Block{Type: "image", Source: &ImageSource{Type: "url", URL: p.Image.URL}})
			}
			continue
		}
		if p.Text != "" {
			out = append(out, Block{Type: "text", Text: p.Text})
		}
	}
	for _, tc := range m.ToolCalls {
		out = append(out, Block{Type: "tool_use", ID: tc.ID, Name: tc.Name, Input: ToolInput(tc.Arguments)})
	}
	if len(out) == 0 {
		out = append(out, Block{Type: "text", Text: " "})
	}
	return out
}

// ToolInput turns a neutral arguments string into the JSON object the
// Messages API requires; arguments that are not an object are wrapped so
// nothing the model produced is lost.
func ToolInput(args string) json.RawMessage {
	t := bytes.TrimSpace([]byte(args))
	if len(t) == 0 {
		return json.RawMessage("{}")
	}
	if t[0] == '{' && json.Valid(t) {
		return json.RawMessage(t)
	}
	b, _ := json.Marshal(map[string]string{"_raw_arguments": args})
	return b
}

// openaiOnly are Chat Completions / Responses fields an OpenAI-dialect
// agent may send that the Messages API rejects as unknown. They are
// mapped where Messages has an equivalent (parallel_tool_calls) and
// otherwise dropped; docs/inference.md lists them.
var openaiOnly = map[string]bool{
	"parallel_tool_calls": true, "reasoning_effort": true, "response_format": true, "stream_options": true,
	"n": true, "presence_penalty": true, "frequency_penalty": true, "logit_bias": true, "logprobs": true,
	"top_logprobs": true, "seed": true, "store": true, "service_tier": true, "modalities": true,
	"prediction": true, "audio": true, "web_search_options": true, "verbosity": true, "prompt_cache_key": true,
	"safety_identifier": true, "function_call": true, "functions": true,
}

func mergeExtra(body []byte, extra json.RawMessage) ([]byte, error) {
	if len(extra) == 0 || bytes.Equal(extra, []byte("null")) {
		return body, nil
	}
	var add, base map[string]json.RawMessage
	if err := json.Unmarshal(extra, &add); err != nil {
		return nil, fmt.Errorf("extra request fields must be a JSON object: %w", err)
	}
	if err := json.Unmarshal(body, &base); err != nil {
		return nil, err
	}
	if string(add["parallel_tool_calls"]) == "false" && len(base["tools"]) > 0 {
		tc := ToolChoice{Type: "auto"}
		if raw, ok := base["tool_choice"]; ok {
			_ = json.Unmarshal(raw, &tc)
		}
		if tc.Type != "none" {
			tc.DisableParallelToolUse = true
			base["tool_choice"], _ = json.Marshal(tc)
		}
	}
	for k, v := range add {
		if openaiOnly[k] {
			continue
		}
		if _, ok := base[k]; !ok {
			base[k] = v
		}
	}
	return json.Marshal(base)
}
