package openai

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/nemoclave/nemoclave/sdk/llm"
)

// DecodeChatRequest parses a Chat Completions body into the neutral
// request, reporting whether the caller asked for a stream and for a final
// usage chunk. System and developer messages become req.System; unknown
// top-level fields are kept in req.Extra so the provider still sees them.
func DecodeChatRequest(body []byte) (req *llm.ChatRequest, stream, includeUsage bool, err error) {
	return DecodeChatRequestObject(body, nil)
}

// DecodeChatRequestObject is DecodeChatRequest for a caller that has
// already decoded body's top level (top, nil if not): the unknown fields
// are taken from it instead of decoding body once more.
func DecodeChatRequestObject(body []byte, top map[string]json.RawMessage) (req *llm.ChatRequest, stream, includeUsage bool, err error) {
	var w ChatRequest
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, false, false, fmt.Errorf("request body is not a valid chat completion request: %w", err)
	}
	req = &llm.ChatRequest{Model: w.Model, Temperature: w.Temperature, TopP: w.TopP, User: w.User}
	req.MaxTokens = w.MaxCompletionTokens
	if req.MaxTokens == nil {
		req.MaxTokens = w.MaxTokens
	}
	if req.Stop, err = decodeStop(w.Stop); err != nil {
		return nil, false, false, err
	}
	if req.ToolChoice, err = decodeToolChoice(w.ToolChoice); err != nil {
		return nil, false, false, err
	}
	for _, t := range w.Tools {
		if t.Type != "" && t.Type != "function" {
			return nil, false, false, fmt.Errorf("tool type %q is not supported: only function tools are", t.Type)
		}
		req.Tools = append(req.Tools, llm.Tool{Name: t.Function.Name, Description: t.Function.Description, Parameters: t.Function.Parameters})
	}
	var system []string
	for i, m := range w.Messages {
		parts, err := decodeContent(m.Content)
		if err != nil {
			return nil, false, false, fmt.Errorf("messages[%d].content: %w", i, err)
		}
		switch m.Role {
		case "system", "developer":
			if len(req.Messages) == 0 {
				system = append(system, llm.Message{Content: parts}.Text())
			} else {
				// A system turn later in the conversation keeps its place.
				req.Messages = append(req.Messages, llm.Message{Role: llm.RoleSystem, Content: parts})
			}
			continue
		case llm.RoleUser, llm.RoleAssistant, llm.RoleTool:
		default:
			return nil, false, false, fmt.Errorf("messages[%d].role %q is not one of system, developer, user, assistant, tool", i, m.Role)
		}
		msg := llm.Message{Role: m.Role, Content: parts, ToolCallID: m.ToolCallID, Name: m.Name}
		for _, tc := range m.ToolCalls {
			msg.ToolCalls = append(msg.ToolCalls, llm.ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments})
		}
		req.Messages = append(req.Messages, msg)
	}
	req.System = strings.Join(system, "\n\n")
	if top != nil {
		req.Extra, err = extraOf(top)
	} else {
		req.Extra, err = extraFields(body)
	}
	if err != nil {
		return nil, false, false, err
	}
	return req, w.Stream, w.StreamOptions != nil && w.StreamOptions.IncludeUsage, nil
}

func decodeStop(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, fmt.Errorf("stop must be a string or an array of strings")
	}
	return many, nil
}

func decodeToolChoice(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var obj struct {
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil || obj.Function.Name == "" {
		return "", fmt.Errorf(`tool_choice must be "auto", "none", "required" or {"type":"function","function":{"name":...}}`)
	}
	return obj.Function.Name, nil
}

func decodeContent(raw json.RawMessage) ([]llm.ContentPart, error) {
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
	var parts []ContentPart
	if err := json.Unmarshal(raw, &parts); err != nil {
		return nil, fmt.Errorf("must be a string or an array of content parts")
	}
	out := make([]llm.ContentPart, 0, len(parts))
	for _, p := range parts {
		switch p.Type {
		case "text":
			out = append(out, llm.Text(p.Text))
		case "image_url":
			if p.ImageURL == nil {
				return nil, fmt.Errorf("image_url part without image_url")
			}
			img, err := ImageFromURL(p.ImageURL.URL)
			if err != nil {
				return nil, err
			}
			out = append(out, llm.ContentPart{Image: img})
		default:
			return nil, fmt.Errorf("content part type %q is not supported (text and image_url are)", p.Type)
		}
	}
	return out, nil
}

// ImageFromURL turns a data: URL into inline bytes and keeps any other
// URL as a reference.
func ImageFromURL(u string) (*llm.Image, error) {
	rest, ok := strings.CutPrefix(u, "data:")
	if !ok {
		return &llm.Image{URL: u}, nil
	}
	meta, data, ok := strings.Cut(rest, ",")
	mime, isB64 := strings.CutSuffix(meta, ";base64")
	if !ok || !isB64 {
		return nil, fmt.Errorf("image data URL must be base64 (data:<mime>;base64,<data>)")
	}
	b, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		return nil, fmt.Errorf("image data URL: %w", err)
	}
	return &llm.Image{MIMEType: mime, Data: b}, nil
}

// ImageURLOf is the inverse of ImageFromURL.
func ImageURLOf(img *llm.Image) string {
	if len(img.Data) == 0 {
		return img.URL
	}
	return "data:" + img.MIMEType + ";base64," + base64.StdEncoding.EncodeToString(img.Data)
}

func extraFields(body []byte) (json.RawMessage, error) {
	var all map[string]json.RawMessage
	if err := json.Unmarshal(body, &all); err != nil {
		return nil, fmt.Errorf("request body must be a JSON object: %w", err)
	}
	return extraOf(all)
}

// extraOf is the unknown keys of a decoded top level; top is not changed.
func extraOf(top map[string]json.RawMessage) (json.RawMessage, error) {
	var extra map[string]json.RawMessage
	for k, v := range top {
		if !knownRequestFields[k] {
			if extra == nil {
				extra = map[string]json.RawMessage{}
			}
			extra[k] = v
		}
	}
	if len(extra) == 0 {
		return nil, nil
	}
	return json.Marshal(extra)
}

// EncodeChatRequest builds the provider request body for req. The
// system prompt becomes the first message; req.Extra keys are merged in
// without overriding the modelled fields.
func EncodeChatRequest(req *llm.ChatRequest, stream bool) ([]byte, error) {
	w := ChatRequest{Model: req.Model, Temperature: req.Temperature, TopP: req.TopP, MaxTokens: req.MaxTokens, User: req.User, Stream: stream}
	if stream {
		w.StreamOptions = &StreamOptions{IncludeUsage: true}
	}
	if len(req.Stop) > 0 {
		w.Stop, _ = json.Marshal(req.Stop)
	}
	switch req.ToolChoice {
	case "":
	case "auto", "none", "required":
		w.ToolChoice, _ = json.Marshal(req.ToolChoice)
	default:
		w.ToolChoice, _ = json.Marshal(map[string]any{"type": "function", "function": map[string]string{"name": req.ToolChoice}})
	}
	for _, t := range req.Tools {
		params := t.Parameters
		if len(params) == 0 {
			params = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		w.Tools = append(w.Tools, Tool{Type: "function", Function: Function{Name: t.Name, Description: t.Description, Parameters: params}})
	}
	if req.System != "" {
		w.Messages = append(w.Messages, Message{Role: "system", Content: mustJSON(req.System)})
	}
	for _, m := range req.Messages {
		w.Messages = append(w.Messages, EncodeMessage(m))
	}
	if w.Messages == nil {
		w.Messages = []Message{} // an array, never null
	}
	body, err := json.Marshal(w)
	if err != nil {
		return nil, err
	}
	return mergeExtra(body, req.Extra)
}

// EncodeMessage converts one neutral message. Text-only content is sent
// as a plain string, which every OpenAI-compatible server accepts.
func EncodeMessage(m llm.Message) Message {
	out := Message{Role: m.Role, Name: m.Name, ToolCallID: m.ToolCallID}
	hasImage := false
	for _, p := range m.Content {
		hasImage = hasImage || p.Image != nil
	}
	switch {
	case hasImage:
		parts := make([]ContentPart, 0, len(m.Content))
		for _, p := range m.Content {
			if p.Image != nil {
				parts = append(parts, ContentPart{Type: "image_url", ImageURL: &ImageURL{URL: ImageURLOf(p.Image)}})
			} else {
				parts = append(parts, ContentPart{Type: "text", Text: p.Text})
			}
		}
		out.Content = mustJSON(parts)
	case len(m.Content) > 0 || len(m.ToolCalls) == 0:
		out.Content = mustJSON(m.Text())
	default:
		out.Content = json.RawMessage("null")
	}
	for _, tc := range m.ToolCalls {
		out.ToolCalls = append(out.ToolCalls, ToolCall{ID: tc.ID, Type: "function", Function: FunctionCall{Name: tc.Name, Arguments: tc.Arguments}})
	}
	return out
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only strings and plain structs reach here
	}
	return b
}

// mergeExtra adds the keys of extra that body does not already have.
func mergeExtra(body []byte, extra json.RawMessage) ([]byte, error) {
	if len(extra) == 0 || bytes.Equal(extra, []byte("null")) {
		return body, nil
	}
	var add map[string]json.RawMessage
	if err := json.Unmarshal(extra, &add); err != nil {
		return nil, fmt.Errorf("extra request fields must be a JSON object: %w", err)
	}
	var base map[string]json.RawMessage
	if err := json.Unmarshal(body, &base); err != nil {
		return nil, err
	}
	for k, v := range add {
		if _, ok := base[k]; !ok {
			base[k] = v
		}
	}
	return json.Marshal(base)
}
