package responses

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/nemoclave/nemoclave/internal/wire/openai"
	"github.com/nemoclave/nemoclave/sdk/llm"
)

// DecodeRequest parses a Responses body into the wire request and the
// neutral chat request for its own input (without any
// previous_response_id history, which the caller prepends).
//
// Mapping: instructions and leading system/developer items become the
// system prompt, later ones system turns in place; function_call items
// become assistant tool calls and function_call_output items tool
// results; max_output_tokens is the token limit. parallel_tool_calls,
// reasoning.effort (as reasoning_effort) and text.format (as
// response_format) travel as Chat Completions fields in Extra, which the
// Anthropic encoder maps or drops. Reasoning items from earlier turns are
// dropped (they are provider-internal). Hosted tools (web search, file
// search, computer use, custom grammars) and tool namespaces are not
// offered to a translated model: the gateway cannot run hosted tools and
// a namespaced call has no Chat Completions or Messages form, so they are
// left out rather than failing the whole request (Codex always sends
// both). File inputs and item references have no neutral equivalent and
// are refused with a 400.
func DecodeRequest(body []byte) (*Request, *llm.ChatRequest, error) {
	var w Request
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, nil, fmt.Errorf("request body is not a valid responses request: %w", err)
	}
	req := &llm.ChatRequest{Model: w.Model, Temperature: w.Temperature, TopP: w.TopP, MaxTokens: w.MaxOutputTokens, User: w.User}
	var system []string
	if w.Instructions != nil && *w.Instructions != "" {
		system = append(system, *w.Instructions)
	}
	for i, t := range w.Tools {
		if t.Type != "function" {
			continue // hosted tool or namespace: not offered (see above)
		}
		if t.Name == "" {
			return nil, nil, fmt.Errorf("tools[%d]: a function tool needs a name", i)
		}
		req.Tools = append(req.Tools, llm.Tool{Name: t.Name, Description: t.Description, Parameters: t.Parameters})
	}
	var err error
	if req.ToolChoice, err = decodeToolChoice(w.ToolChoice); err != nil {
		return nil, nil, err
	}
	msgs, sys, err := DecodeInput(w.Input)
	if err != nil {
		return nil, nil, err
	}
	req.System = strings.Join(append(system, sys...), "\n\n")
	req.Messages = msgs
	extra := map[string]any{}
	if w.ParallelToolCalls != nil {
		extra["parallel_tool_calls"] = *w.ParallelToolCalls
	}
	if len(w.Reasoning) > 0 && string(w.Reasoning) != "null" {
		var r struct {
			Effort string `json:"effort"`
		}
		if err := json.Unmarshal(w.Reasoning, &r); err != nil {
			return nil, nil, fmt.Errorf("reasoning must be an object such as {\"effort\":\"low\"}")
		}
		if r.Effort != "" {
			extra["reasoning_effort"] = r.Effort
		}
	}
	if rf, err := responseFormat(w.Text); err != nil {
		return nil, nil, err
	} else if rf != nil {
		extra["response_format"] = rf
	}
	if len(extra) > 0 {
		req.Extra, _ = json.Marshal(extra)
	}
	return &w, req, nil
}

func decodeToolChoice(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		switch s {
		case "auto", "none", "required":
			return s, nil
		}
		return "", fmt.Errorf(`tool_choice %q is not "auto", "none" or "required"`, s)
	}
	var obj struct {
		Type string `json:"type"`
		Name string `json:"name"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil || obj.Type != "function" || obj.Name == "" {
		return "", fmt.Errorf(`tool_choice must be "auto", "none", "required" or {"type":"function","name":...}`)
	}
	return obj.Name, nil
}

// responseFormat maps text.format to a Chat Completions response_format.
func responseFormat(text json.RawMessage) (any, error) {
	if len(text) == 0 || string(text) == "null" {
		return nil, nil
	}
	var t struct {
		Format *struct {
			Type   string          `json:"type"`
			Name   string          `json:"name"`
			Schema json.RawMessage `json:"schema"`
			Strict *bool           `json:"strict"`
			Desc   string          `json:"description"`
		} `json:"format"`
	}
	if err := json.Unmarshal(text, &t); err != nil {
		return nil, fmt.Errorf("text must be an object such as {\"format\":{\"type\":\"text\"}}")
	}
	if t.Format == nil {
		return nil, nil
	}
	switch t.Format.Type {
	case "", "text":
		return nil, nil
	case "json_object":
		return map[string]any{"type": "json_object"}, nil
	case "json_schema":
		if t.Format.Name == "" || len(t.Format.Schema) == 0 {
			return nil, fmt.Errorf("text.format json_schema needs a name and a schema")
		}
		js := map[string]any{"name": t.Format.Name, "schema": t.Format.Schema}
		if t.Format.Strict != nil {
			js["strict"] = *t.Format.Strict
		}
		if t.Format.Desc != "" {
			js["description"] = t.Format.Desc
		}
		return map[string]any{"type": "json_schema", "json_schema": js}, nil
	}
	return nil, fmt.Errorf("text.format.type %q is not text, json_object or json_schema", t.Format.Type)
}

// DecodeInput converts input (a string or items) to neutral messages.
// Leading system and developer messages are returned apart as system
// text; consecutive function calls join one assistant turn.
func DecodeInput(raw json.RawMessage) ([]llm.Message, []string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, nil, err
		}
		return []llm.Message{{Role: llm.RoleUser, Content: []llm.ContentPart{llm.Text(s)}}}, nil, nil
	}
	var items []Item
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, nil, fmt.Errorf("input must be a string or an array of input items")
	}
	var (
		out    []llm.Message
		system []string
	)
	// lastAssistant is the open assistant turn function calls join.
	lastAssistant := func() *llm.Message {
		if n := len(out); n > 0 && out[n-1].Role == llm.RoleAssistant {
			return &out[n-1]
		}
		out = append(out, llm.Message{Role: llm.RoleAssistant})
		return &out[len(out)-1]
	}
	for i, it := range items {
		typ := it.Type
		if typ == "" && it.Role != "" {
			typ = "message"
		}
		switch typ {
		case "message":
			parts, err := decodeParts(it.Content)
			if err != nil {
				return nil, nil, fmt.Errorf("input[%d].content: %w", i, err)
			}
			switch it.Role {
			case "system", "developer":
				if len(out) == 0 {
					system = append(system, llm.Message{Content: parts}.Text())
				} else {
					out = append(out, llm.Message{Role: llm.RoleSystem, Content: parts})
				}
			case llm.RoleUser, llm.RoleAssistant:
				out = append(out, llm.Message{Role: it.Role, Content: parts})
			default:
				return nil, nil, fmt.Errorf("input[%d].role %q is not user, assistant, system or developer", i, it.Role)
			}
		case "function_call":
			if it.CallID == "" || it.Name == "" {
				return nil, nil, fmt.Errorf("input[%d]: a function_call item needs call_id and name", i)
			}
			a := lastAssistant()
			a.ToolCalls = append(a.ToolCalls, llm.ToolCall{ID: it.CallID, Name: it.Name, Arguments: it.Arguments})
		case "function_call_output":
			if it.CallID == "" {
				return nil, nil, fmt.Errorf("input[%d]: a function_call_output item needs call_id", i)
			}
			text, err := outputText(it.Output)
			if err != nil {
				return nil, nil, fmt.Errorf("input[%d].output: %w", i, err)
			}
			out = append(out, llm.Message{Role: llm.RoleTool, ToolCallID: it.CallID, Content: []llm.ContentPart{llm.Text(text)}})
		case "reasoning":
			// Provider-internal reasoning from an earlier turn: dropped.
		default:
			return nil, nil, fmt.Errorf("input[%d]: item type %q is not supported through the gateway (message, function_call, function_call_output and reasoning are)", i, typ)
		}
	}
	return out, system, nil
}

func decodeParts(raw json.RawMessage) ([]llm.ContentPart, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		return []llm.ContentPart{llm.Text(s)}, nil
	}
	var parts []Part
	if err := json.Unmarshal(raw, &parts); err != nil {
		return nil, fmt.Errorf("must be a string or an array of content parts")
	}
	out := make([]llm.ContentPart, 0, len(parts))
	for _, p := range parts {
		switch p.Type {
		case "input_text", "output_text", "text", "refusal":
			out = append(out, llm.Text(p.Text))
		case "input_image":
			if p.ImageURL == "" {
				return nil, fmt.Errorf("input_image needs image_url (file_id images are not supported through the gateway)")
			}
			img, err := openai.ImageFromURL(p.ImageURL)
			if err != nil {
				return nil, err
			}
			out = append(out, llm.ContentPart{Image: img})
		default:
			return nil, fmt.Errorf("content part type %q is not supported (input_text, input_image, output_text are)", p.Type)
		}
	}
	return out, nil
}

// outputText is a function_call_output's output: a string or text parts.
func outputText(raw json.RawMessage) (string, error) {
	parts, err := decodeParts(raw)
	if err != nil {
		return "", err
	}
	return llm.Message{Content: parts}.Text(), nil
}
