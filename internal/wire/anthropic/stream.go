package anthropic

import (
	"encoding/json"
	"fmt"

	"github.com/nemoclave/nemoclave/sdk/llm"
	"github.com/nemoclave/nemoclave/sdk/status"
)

// Event is one named SSE event to write.
type Event struct {
	Name string
	Data []byte
}

// StreamEncoder turns neutral chunks into the Messages event sequence
// (message_start, content_block_start/delta/stop, message_delta,
// message_stop) for one response. Text and each tool call get their own
// content block, opened when their first delta arrives.
type StreamEncoder struct {
	ID    string
	Model string

	started   bool
	blockOpen bool
	blockTool int // tool index of the open block, -1 for text
	next      int // index of the next content block
	finish    string
	usage     *llm.Usage
	sawTool   bool
}

// Encode returns the events for one chunk.
func (e *StreamEncoder) Encode(c *llm.ChatChunk) []Event {
	var out []Event
	if !e.started {
		e.started = true
		if e.ID == "" {
			e.ID = c.ID
		}
		msg := Response{ID: e.ID, Type: "message", Role: "assistant", Model: e.Model, Content: []Block{}}
		out = append(out, Event{"message_start", marshal(StreamEvent{Type: "message_start", Message: &msg})})
	}
	if c.DeltaText != "" {
		if !e.blockOpen || e.blockTool != -1 {
			out = e.closeBlock(out)
			out = e.openBlock(out, -1, Block{Type: "text", Text: ""})
		}
		idx := e.next - 1
		out = append(out, Event{"content_block_delta", marshal(StreamEvent{Type: "content_block_delta", Index: &idx, Delta: &Delta{Type: "text_delta", Text: c.DeltaText}})})
	}
	for _, d := range c.ToolCalls {
		if !e.blockOpen || e.blockTool != d.Index {
			out = e.closeBlock(out)
			out = e.openBlock(out, d.Index, Block{Type: "tool_use", ID: d.ID, Name: d.Name, Input: json.RawMessage("{}")})
			e.sawTool = true
		}
		if d.ArgumentsDelta != "" {
			idx := e.next - 1
			out = append(out, Event{"content_block_delta", marshal(StreamEvent{Type: "content_block_delta", Index: &idx, Delta: &Delta{Type: "input_json_delta", PartialJSON: d.ArgumentsDelta}})})
		}
	}
	if c.FinishReason != "" {
		e.finish = c.FinishReason
	}
	if c.Usage != nil {
		u := *c.Usage
		e.usage = &u
	}
	return out
}

func (e *StreamEncoder) openBlock(out []Event, tool int, b Block) []Event {
	idx := e.next
	e.next++
	e.blockOpen, e.blockTool = true, tool
	return append(out, Event{"content_block_start", marshal(StreamEvent{Type: "content_block_start", Index: &idx, ContentBlock: &b})})
}

func (e *StreamEncoder) closeBlock(out []Event) []Event {
	if !e.blockOpen {
		return out
	}
	idx := e.next - 1
	e.blockOpen = false
	return append(out, Event{"content_block_stop", marshal(StreamEvent{Type: "content_block_stop", Index: &idx})})
}

// Finish closes the stream: the open block, message_delta with the stop
// reason and usage, message_stop.
func (e *StreamEncoder) Finish() []Event {
	var out []Event
	if !e.started {
		out = e.Encode(&llm.ChatChunk{})
	}
	out = e.closeBlock(out)
	stop := StopReason(e.finish)
	if stop == "end_turn" && e.sawTool {
		stop = "tool_use"
	}
	var u Usage
	if e.usage != nil {
		u = EncodeUsage(*e.usage)
	}
	out = append(out, Event{"message_delta", marshal(StreamEvent{Type: "message_delta", Delta: &Delta{StopReason: &stop}, Usage: &u})})
	return append(out, Event{"message_stop", marshal(StreamEvent{Type: "message_stop"})})
}

// ErrorEvent is the event sent when a stream fails after it started.
func ErrorEvent(httpStatus int, message string) Event {
	return Event{"error", marshal(ErrorFor(httpStatus, message))}
}

// StreamDecoder turns Messages stream events into neutral chunks.
type StreamDecoder struct {
	id, model  string
	usage      Usage
	toolOfBlk  map[int]int
	toolsSoFar int
}

// Decode converts one event's data. It returns nil for events that carry
// nothing neutral (ping, content_block_stop), and done at message_stop.
func (d *StreamDecoder) Decode(data []byte) (chunk *llm.ChatChunk, done bool, err error) {
	var ev StreamEvent
	if err := json.Unmarshal(data, &ev); err != nil {
		return nil, false, status.Errorf(status.Unavailable, "provider sent a malformed stream event: %v", err)
	}
	switch ev.Type {
	case "message_start":
		if ev.Message != nil {
			d.id, d.model, d.usage = ev.Message.ID, ev.Message.Model, ev.Message.Usage
		}
		return nil, false, nil
	case "content_block_start":
		if ev.ContentBlock != nil && ev.ContentBlock.Type == "tool_use" && ev.Index != nil {
			if d.toolOfBlk == nil {
				d.toolOfBlk = map[int]int{}
			}
			ti := d.toolsSoFar
			d.toolsSoFar++
			d.toolOfBlk[*ev.Index] = ti
			return &llm.ChatChunk{ID: d.id, Model: d.model, ToolCalls: []llm.ToolCallDelta{{Index: ti, ID: ev.ContentBlock.ID, Name: ev.ContentBlock.Name}}}, false, nil
		}
		if ev.ContentBlock != nil && ev.ContentBlock.Type == "text" && ev.ContentBlock.Text != "" {
			return &llm.ChatChunk{ID: d.id, Model: d.model, DeltaText: ev.ContentBlock.Text}, false, nil
		}
		return nil, false, nil
	case "content_block_delta":
		if ev.Delta == nil {
			return nil, false, nil
		}
		switch ev.Delta.Type {
		case "text_delta":
			return &llm.ChatChunk{ID: d.id, Model: d.model, DeltaText: ev.Delta.Text}, false, nil
		case "input_json_delta":
			if ev.Index == nil {
				return nil, false, nil
			}
			ti, ok := d.toolOfBlk[*ev.Index]
			if !ok {
				return nil, false, nil
			}
			return &llm.ChatChunk{ID: d.id, Model: d.model, ToolCalls: []llm.ToolCallDelta{{Index: ti, ArgumentsDelta: ev.Delta.PartialJSON}}}, false, nil
		}
		return nil, false, nil
	case "message_delta":
		c := &llm.ChatChunk{ID: d.id, Model: d.model}
		if ev.Delta != nil && ev.Delta.StopReason != nil {
			c.FinishReason = FinishReason(*ev.Delta.StopReason)
		}
		if ev.Usage != nil {
			if ev.Usage.InputTokens > 0 {
				d.usage.InputTokens = ev.Usage.InputTokens
			}
			if ev.Usage.CacheReadInputTokens > 0 {
				d.usage.CacheReadInputTokens = ev.Usage.CacheReadInputTokens
			}
			if ev.Usage.CacheCreationInputTokens > 0 {
				d.usage.CacheCreationInputTokens = ev.Usage.CacheCreationInputTokens
			}
			d.usage.OutputTokens = ev.Usage.OutputTokens
		}
		u := DecodeUsage(d.usage)
		c.Usage = &u
		return c, false, nil
	case "message_stop":
		return nil, true, nil
	case "error":
		if ev.Error != nil {
			return nil, false, status.Errorf(StatusCodeOfType(ev.Error.Type), "provider stream error (%s): %s", ev.Error.Type, ev.Error.Message)
		}
		return nil, false, status.Errorf(status.Unavailable, "provider stream error")
	}
	return nil, false, nil
}

// String is for test failure messages.
func (e Event) String() string { return fmt.Sprintf("event: %s\ndata: %s", e.Name, e.Data) }
