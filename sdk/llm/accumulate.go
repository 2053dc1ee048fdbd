package llm

import (
	"sort"
	"strings"
)

// Accumulator folds streamed chunks into a ChatResponse incrementally, for
// callers (the gateway) that forward chunks and also need the whole answer
// for budgets and logs. The zero value is ready to use; it is not safe for
// concurrent use.
type Accumulator struct {
	id, model, finish string
	text              strings.Builder
	calls             map[int]*ToolCall
	args              map[int]*strings.Builder
	usage             *Usage
}

// Add folds one chunk in. IDs and models keep their first non-empty value;
// the finish reason and usage keep their last, because providers report
// cumulative usage on the final chunk.
func (a *Accumulator) Add(c *ChatChunk) {
	if c == nil {
		return
	}
	if a.id == "" {
		a.id = c.ID
	}
	if a.model == "" {
		a.model = c.Model
	}
	a.text.WriteString(c.DeltaText)
	for _, d := range c.ToolCalls {
		if a.calls == nil {
			a.calls, a.args = map[int]*ToolCall{}, map[int]*strings.Builder{}
		}
		tc, ok := a.calls[d.Index]
		if !ok {
			tc = &ToolCall{}
			a.calls[d.Index], a.args[d.Index] = tc, &strings.Builder{}
		}
		if tc.ID == "" {
			tc.ID = d.ID
		}
		if tc.Name == "" {
			tc.Name = d.Name
		}
		a.args[d.Index].WriteString(d.ArgumentsDelta)
	}
	if c.FinishReason != "" {
		a.finish = c.FinishReason
	}
	if c.Usage != nil {
		u := *c.Usage
		a.usage = &u
	}
}

// Response returns the answer accumulated so far: an assistant message
// with the concatenated text and the tool calls ordered by index.
func (a *Accumulator) Response() *ChatResponse {
	resp := &ChatResponse{ID: a.id, Model: a.model, FinishReason: a.finish, Message: Message{Role: RoleAssistant}}
	if a.text.Len() > 0 {
		resp.Message.Content = []ContentPart{Text(a.text.String())}
	}
	idx := make([]int, 0, len(a.calls))
	for i := range a.calls {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	for _, i := range idx {
		tc := *a.calls[i]
		tc.Arguments = a.args[i].String()
		resp.Message.ToolCalls = append(resp.Message.ToolCalls, tc)
	}
	if a.usage != nil {
		resp.Usage = *a.usage
	}
	return resp
}

// UsageReported reports whether any chunk carried usage.
func (a *Accumulator) UsageReported() bool { return a.usage != nil }

// Accumulate folds a complete stream into the response Chat would have
// returned for the same request.
func Accumulate(chunks []*ChatChunk) *ChatResponse {
	var a Accumulator
	for _, c := range chunks {
		a.Add(c)
	}
	return a.Response()
}
