package responses

import (
	"encoding/json"
	"sort"
	"strings"

	"github.com/nemoclave/nemoclave/sdk/llm"
)

// Event is one streaming event: its type (the SSE event name) and data.
type Event struct {
	Name string
	Data []byte
}

// StreamEncoder turns neutral chunks into the Responses event sequence:
// response.created and response.in_progress first; per output item
// response.output_item.added, then for text response.content_part.added,
// response.output_text.delta… and their .done events, for function calls
// response.function_call_arguments.delta… and .done; finally
// response.completed (or response.incomplete) with the whole response.
type StreamEncoder struct {
	// Response is the in-progress response; Finish completes it.
	Response *Response
	// ItemID makes output item ids.
	ItemID func(prefix string) string

	seq     int
	started bool
	text    *openText
	calls   map[int]*openCall
	nextOut int
	usage   *llm.Usage
	finish  string
	done    []indexedItem
}

type openText struct {
	id    string
	out   int
	text  strings.Builder
	ended bool
}

type openCall struct {
	id, callID, name string
	out              int
	args             strings.Builder
}

type indexedItem struct {
	out  int
	item OutputItem
}

func (e *StreamEncoder) event(typ string, fields map[string]any) Event {
	fields["type"] = typ
	fields["sequence_number"] = e.seq
	e.seq++
	b, _ := json.Marshal(fields)
	return Event{Name: typ, Data: b}
}

// Start returns the opening events.
func (e *StreamEncoder) Start() []Event {
	if e.started {
		return nil
	}
	e.started = true
	return []Event{
		e.event("response.created", map[string]any{"response": e.Response}),
		e.event("response.in_progress", map[string]any{"response": e.Response}),
	}
}

// Encode returns the events for one chunk.
func (e *StreamEncoder) Encode(c *llm.ChatChunk) []Event {
	out := e.Start()
	if c.DeltaText != "" {
		if e.text == nil {
			e.text = &openText{id: e.ItemID("msg_"), out: e.nextOut}
			e.nextOut++
			item := MessageItem(e.text.id, "", "in_progress")
			item.Content = &[]OutputPart{}
			out = append(out,
				e.event("response.output_item.added", map[string]any{"output_index": e.text.out, "item": item}),
				e.event("response.content_part.added", map[string]any{"item_id": e.text.id, "output_index": e.text.out, "content_index": 0,
					"part": OutputPart{Type: "output_text", Text: "", Annotations: []any{}}}))
		}
		e.text.text.WriteString(c.DeltaText)
		out = append(out, e.event("response.output_text.delta", map[string]any{"item_id": e.text.id, "output_index": e.text.out, "content_index": 0, "delta": c.DeltaText, "logprobs": []any{}}))
	}
	for _, d := range c.ToolCalls {
		if e.calls == nil {
			e.calls = map[int]*openCall{}
		}
		oc, ok := e.calls[d.Index]
		if !ok {
			// Text before a tool call is complete once the call starts.
			out = append(out, e.endText()...)
			oc = &openCall{id: e.ItemID("fc_"), callID: d.ID, name: d.Name, out: e.nextOut}
			e.nextOut++
			e.calls[d.Index] = oc
			out = append(out, e.event("response.output_item.added", map[string]any{"output_index": oc.out, "item": CallItem(oc.id, oc.callID, oc.name, "", "in_progress")}))
		}
		if oc.callID == "" {
			oc.callID = d.ID
		}
		if oc.name == "" {
			oc.name = d.Name
		}
		if d.ArgumentsDelta != "" {
			oc.args.WriteString(d.ArgumentsDelta)
			out = append(out, e.event("response.function_call_arguments.delta", map[string]any{"item_id": oc.id, "output_index": oc.out, "delta": d.ArgumentsDelta}))
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

func (e *StreamEncoder) endText() []Event {
	t := e.text
	if t == nil || t.ended {
		return nil
	}
	t.ended = true
	text := t.text.String()
	part := OutputPart{Type: "output_text", Text: text, Annotations: []any{}}
	item := MessageItem(t.id, text, "completed")
	e.done = append(e.done, indexedItem{t.out, item})
	return []Event{
		e.event("response.output_text.done", map[string]any{"item_id": t.id, "output_index": t.out, "content_index": 0, "text": text, "logprobs": []any{}}),
		e.event("response.content_part.done", map[string]any{"item_id": t.id, "output_index": t.out, "content_index": 0, "part": part}),
		e.event("response.output_item.done", map[string]any{"output_index": t.out, "item": item}),
	}
}

// Finish closes open items and returns the final events; the response is
// then complete (Output, Usage, Status).
func (e *StreamEncoder) Finish() []Event {
	out := e.Start()
	if e.text == nil && len(e.calls) == 0 {
		// An empty answer is still one (empty) message.
		e.text = &openText{id: e.ItemID("msg_"), out: e.nextOut}
		e.nextOut++
		item := MessageItem(e.text.id, "", "in_progress")
		item.Content = &[]OutputPart{}
		out = append(out, e.event("response.output_item.added", map[string]any{"output_index": e.text.out, "item": item}),
			e.event("response.content_part.added", map[string]any{"item_id": e.text.id, "output_index": e.text.out, "content_index": 0,
				"part": OutputPart{Type: "output_text", Text: "", Annotations: []any{}}}))
	}
	out = append(out, e.endText()...)
	idx := make([]int, 0, len(e.calls))
	for i := range e.calls {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	for _, i := range idx {
		oc := e.calls[i]
		args := oc.args.String()
		item := CallItem(oc.id, oc.callID, oc.name, args, "completed")
		e.done = append(e.done, indexedItem{oc.out, item})
		out = append(out,
			e.event("response.function_call_arguments.done", map[string]any{"item_id": oc.id, "output_index": oc.out, "name": oc.name, "arguments": args}),
			e.event("response.output_item.done", map[string]any{"output_index": oc.out, "item": item}))
	}
	sort.Slice(e.done, func(a, b int) bool { return e.done[a].out < e.done[b].out })
	r := e.Response
	r.Output = make([]OutputItem, len(e.done))
	for i, d := range e.done {
		r.Output[i] = d.item
	}
	if e.usage != nil {
		r.Usage = UsageOf(*e.usage)
	}
	Finish(r, e.finish)
	name := "response.completed"
	if r.Status == "incomplete" {
		name = "response.incomplete"
	}
	return append(out, e.event(name, map[string]any{"response": r}))
}

// Fail returns the events that end a stream that broke after it started:
// an error event, then response.failed with the error.
func (e *StreamEncoder) Fail(code, msg string) []Event {
	out := e.Start()
	r := e.Response
	r.Status, r.Error = "failed", &Error{Code: code, Message: msg}
	return append(out,
		e.event("error", map[string]any{"code": code, "message": msg, "param": nil}),
		e.event("response.failed", map[string]any{"response": r}))
}
