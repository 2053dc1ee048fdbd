package toolloop

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/nemoclave/nemoclave/internal/wire/openai"
	"github.com/nemoclave/nemoclave/internal/wire/sse"
)

// Tools is what the loop may call.
type Tools interface {
	// List returns the tools offered to the model on the next call.
	List(ctx context.Context) []openai.Tool
	// Call runs one tool and returns the text the model sees.
	Call(ctx context.Context, name string, args json.RawMessage) (string, error)
}

// Client asks a gateway's Chat Completions endpoint.
type Client struct {
	// BaseURL ends in /v1, as OPENAI_BASE_URL does.
	BaseURL string
	HTTP    *http.Client
	// Header is added to every request (the subagent's name).
	Header http.Header
	// Stream asks for server-sent events, so text shows as it arrives.
	Stream bool
}

// Loop runs turns of one conversation.
type Loop struct {
	Client   *Client
	Model    string
	Tools    Tools // nil offers none
	MaxSteps int   // model calls per turn

	// Text receives the assistant's words as they arrive, each answer
	// ended by a newline; nil discards them.
	Text io.Writer
	// OnCall is told of each tool call before it runs; OnToolError of a
	// tool that failed (the model is told too, and goes on).
	OnCall      func(name, args string)
	OnToolError func(name string, err error)
}

// Turn appends the model's messages and the tool results to history until
// the model answers without calling a tool, and returns the new history and
// the answer's text.
func (l *Loop) Turn(ctx context.Context, history []openai.Message) ([]openai.Message, string, error) {
	for step := 0; step < l.MaxSteps; step++ {
		req := openai.ChatRequest{Model: l.Model, Messages: history}
		if l.Tools != nil {
			req.Tools = l.Tools.List(ctx)
		}
		msg, err := l.Client.Complete(ctx, req, l.Text)
		if err != nil {
			return history, "", err
		}
		history = append(history, msg)
		if len(msg.ToolCalls) == 0 {
			return history, TextOf(msg), nil
		}
		for _, call := range msg.ToolCalls {
			if l.OnCall != nil {
				l.OnCall(call.Function.Name, call.Function.Arguments)
			}
			history = append(history, ToolMessage(call.ID, l.call(ctx, call.Function.Name, call.Function.Arguments)))
		}
	}
	return history, "", fmt.Errorf("stopped after %d model calls in one turn; the model kept calling tools", l.MaxSteps)
}

func (l *Loop) call(ctx context.Context, name, args string) string {
	if l.Tools == nil {
		return `{"error":"no tools are available here"}`
	}
	out, err := l.Tools.Call(ctx, name, json.RawMessage(args))
	if err != nil {
		if l.OnToolError != nil {
			l.OnToolError(name, err)
		}
		b, _ := json.Marshal(map[string]string{"error": err.Error()})
		return string(b)
	}
	return out
}

// Complete asks for one assistant message. Streamed text is written to
// text as it arrives (a unary answer's text at once), then a newline.
func (c *Client) Complete(ctx context.Context, req openai.ChatRequest, text io.Writer) (openai.Message, error) {
	req.Stream = c.Stream
	body, err := json.Marshal(req)
	if err != nil {
		return openai.Message{}, err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(c.BaseURL, "/")+"/chat/completions", bytes.NewReader(body))
	if err != nil {
		return openai.Message{}, fmt.Errorf("inference gateway: %w", err)
	}
	for k, vs := range c.Header {
		hr.Header[k] = vs
	}
	hr.Header.Set("Content-Type", "application/json")
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(hr)
	if err != nil {
		return openai.Message{}, fmt.Errorf("inference gateway: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return openai.Message{}, gatewayError(resp)
	}
	if text == nil {
		text = io.Discard
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return readStream(resp.Body, text)
	}
	var cr openai.ChatResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&cr); err != nil {
		return openai.Message{}, fmt.Errorf("inference gateway: a response that is not a chat completion: %w", err)
	}
	if len(cr.Choices) == 0 {
		return openai.Message{}, errors.New("inference gateway returned no choices")
	}
	m := cr.Choices[0].Message
	msg := openai.Message{Role: "assistant", ToolCalls: m.ToolCalls}
	if m.Content != nil {
		msg.Content, _ = json.Marshal(*m.Content)
		if *m.Content != "" {
			fmt.Fprintln(text, *m.Content)
		}
	}
	return msg, nil
}

// readStream puts a streamed message back together: text deltas in
// order, tool calls by their index, each call's arguments concatenated.
func readStream(r io.Reader, text io.Writer) (openai.Message, error) {
	var content strings.Builder
	var calls []openai.ToolCall
	chunks := 0
	rd := sse.NewReader(r)
	for {
		ev, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return openai.Message{}, fmt.Errorf("inference gateway: %w", err)
		}
		if string(ev.Data) == "[DONE]" {
			break
		}
		var ch openai.ChatChunk
		if err := json.Unmarshal(ev.Data, &ch); err != nil {
			return openai.Message{}, fmt.Errorf("inference gateway: a stream event that is not a chunk: %w", err)
		}
		var eb openai.ErrorBody
		if len(ch.Choices) == 0 && json.Unmarshal(ev.Data, &eb) == nil && eb.Error.Message != "" {
			return openai.Message{}, fmt.Errorf("inference gateway: %s", eb.Error.Message)
		}
		chunks++
		for _, c := range ch.Choices {
			if c.Delta.Content != nil && *c.Delta.Content != "" {
				content.WriteString(*c.Delta.Content)
				io.WriteString(text, *c.Delta.Content)
			}
			for _, d := range c.Delta.ToolCalls {
				i := len(calls)
				if d.Index != nil {
					i = *d.Index
				}
				if i < 0 || i > len(calls) {
					return openai.Message{}, fmt.Errorf("inference gateway: tool call delta with index %d after %d calls", i, len(calls))
				}
				if i == len(calls) {
					calls = append(calls, openai.ToolCall{Type: "function"})
				}
				tc := &calls[i]
				if d.ID != "" {
					tc.ID = d.ID
				}
				if d.Type != "" {
					tc.Type = d.Type
				}
				tc.Function.Name += d.Function.Name
				tc.Function.Arguments += d.Function.Arguments
			}
		}
	}
	if chunks == 0 {
		return openai.Message{}, errors.New("inference gateway streamed no choices")
	}
	if content.Len() > 0 {
		fmt.Fprintln(text)
	}
	msg := openai.Message{Role: "assistant", ToolCalls: calls}
	if content.Len() > 0 || len(calls) == 0 {
		msg.Content, _ = json.Marshal(content.String())
	}
	return msg, nil
}

// gatewayError turns an error response into a Go error carrying the
// gateway's message (which says what to do: budget, approval, route).
func gatewayError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var eb openai.ErrorBody
	if json.Unmarshal(b, &eb) == nil && eb.Error.Message != "" {
		return fmt.Errorf("inference gateway: %s: %s", resp.Status, eb.Error.Message)
	}
	return fmt.Errorf("inference gateway: %s: %s", resp.Status, strings.TrimSpace(string(b)))
}

// SystemMessage, UserMessage and ToolMessage build the messages the loop
// sends; UserParts carries text and images.
func SystemMessage(text string) openai.Message {
	return openai.Message{Role: "system", Content: jsonString(text)}
}

// UserMessage is a plain text user turn.
func UserMessage(text string) openai.Message {
	return openai.Message{Role: "user", Content: jsonString(text)}
}

// UserParts is a user turn of content parts (text, image_url).
func UserParts(parts []openai.ContentPart) openai.Message {
	b, _ := json.Marshal(parts)
	return openai.Message{Role: "user", Content: b}
}

// ToolMessage answers the call id with a tool's output.
func ToolMessage(callID, text string) openai.Message {
	return openai.Message{Role: "tool", Content: jsonString(text), ToolCallID: callID}
}

// TextOf is a message's text: its string content, or its text parts
// joined.
func TextOf(m openai.Message) string {
	var s string
	if json.Unmarshal(m.Content, &s) == nil {
		return s
	}
	var parts []openai.ContentPart
	_ = json.Unmarshal(m.Content, &parts)
	var b strings.Builder
	for _, p := range parts {
		if p.Type == "text" {
			b.WriteString(p.Text)
		}
	}
	return b.String()
}

func jsonString(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}
