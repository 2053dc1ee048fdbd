package wire_test

import (
	"bytes"
	"encoding/json"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/nemoclave/nemoclave/internal/wire/anthropic"
	"github.com/nemoclave/nemoclave/internal/wire/openai"
	"github.com/nemoclave/nemoclave/internal/wire/sse"
	"github.com/nemoclave/nemoclave/sdk/llm"
)

func sample() *llm.ChatRequest {
	temp, mt := 0.5, int64(100)
	return &llm.ChatRequest{
		Model: "m", System: "be nice", Temperature: &temp, MaxTokens: &mt, Stop: []string{"END"}, User: "u1", ToolChoice: "lookup",
		Tools: []llm.Tool{{Name: "lookup", Description: "d", Parameters: json.RawMessage(`{"type":"object","properties":{"q":{"type":"string"}}}`)}},
		Messages: []llm.Message{
			{Role: llm.RoleUser, Content: []llm.ContentPart{llm.Text("look at "), {Image: &llm.Image{MIMEType: "image/png", Data: []byte{1, 2, 3}}}}},
			{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{{ID: "c1", Name: "lookup", Arguments: `{"q":"x"}`}}},
			{Role: llm.RoleTool, ToolCallID: "c1", Content: []llm.ContentPart{llm.Text("found")}},
		},
		Extra: json.RawMessage(`{"top_k":3}`), // a field both dialects know
	}
}

// TestRequestsRoundTrip encodes a neutral request in each wire shape and
// decodes it back: nothing modelled may be lost in translation.
func TestRequestsRoundTrip(t *testing.T) {
	t.Parallel()
	want := sample()
	ob, err := openai.EncodeChatRequest(want, true)
	if err != nil {
		t.Fatal(err)
	}
	got, stream, usage, err := openai.DecodeChatRequest(ob)
	if err != nil || !stream || !usage {
		t.Fatalf("%v %v %v", err, stream, usage)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("openai round trip:\n got %+v\nwant %+v", got, want)
	}
	ab, err := anthropic.EncodeRequest(want, false)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err = anthropic.DecodeRequest(ab)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("anthropic round trip:\n got %+v\nwant %+v\n%s", got, want, ab)
	}
}

func streamOf() []*llm.ChatChunk {
	return []*llm.ChatChunk{
		{ID: "r", Model: "m", DeltaText: "hello "},
		{ID: "r", Model: "m", DeltaText: "world"},
		{ID: "r", Model: "m", ToolCalls: []llm.ToolCallDelta{{Index: 0, ID: "c1", Name: "f", ArgumentsDelta: `{"a":`}}},
		{ID: "r", Model: "m", ToolCalls: []llm.ToolCallDelta{{Index: 0, ArgumentsDelta: `1}`}}},
		{ID: "r", Model: "m", ToolCalls: []llm.ToolCallDelta{{Index: 1, ID: "c2", Name: "g", ArgumentsDelta: `{}`}}},
		{ID: "r", Model: "m", FinishReason: llm.FinishToolCalls, Usage: &llm.Usage{InputTokens: 10, OutputTokens: 5, CachedInputTokens: 4}},
	}
}

// TestStreamsRoundTrip writes a stream as SSE in each shape, reads it
// back and checks it accumulates to the same answer.
func TestStreamsRoundTrip(t *testing.T) {
	t.Parallel()
	want := llm.Accumulate(streamOf())

	var buf bytes.Buffer
	w := sse.NewWriter(&buf)
	enc := openai.ChunkEncoder{ID: "r", Model: "m", IncludeUsage: true}
	for _, c := range streamOf() {
		for _, wc := range enc.Encode(c) {
			b, _ := json.Marshal(wc)
			_ = w.Write("", b)
		}
	}
	_ = w.Write("", []byte("[DONE]"))
	var got []*llm.ChatChunk
	r := sse.NewReader(&buf)
	for {
		ev, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if string(ev.Data) == "[DONE]" {
			continue
		}
		var wc openai.ChatChunk
		if err := json.Unmarshal(ev.Data, &wc); err != nil {
			t.Fatal(err)
		}
		got = append(got, openai.DecodeChunk(&wc))
	}
	if a := llm.Accumulate(got); !reflect.DeepEqual(a, want) {
		t.Fatalf("openai stream:\n got %+v\nwant %+v", a, want)
	}

	buf.Reset()
	aenc := anthropic.StreamEncoder{ID: "r", Model: "m"}
	for _, c := range streamOf() {
		for _, ev := range aenc.Encode(c) {
			_ = w.Write(ev.Name, ev.Data)
		}
	}
	for _, ev := range aenc.Finish() {
		_ = w.Write(ev.Name, ev.Data)
	}
	if !strings.Contains(buf.String(), "event: message_start\n") || !strings.Contains(buf.String(), "event: content_block_stop\n") {
		t.Fatalf("anthropic events: %s", buf.String())
	}
	got = nil
	var dec anthropic.StreamDecoder
	r = sse.NewReader(&buf)
	for {
		ev, err := r.Next()
		if err == io.EOF {
			break
		}
		c, done, err := dec.Decode(ev.Data)
		if err != nil {
			t.Fatal(err)
		}
		if c != nil {
			got = append(got, c)
		}
		if done {
			break
		}
	}
	if a := llm.Accumulate(got); !reflect.DeepEqual(a, want) {
		t.Fatalf("anthropic stream:\n got %+v\nwant %+v", a, want)
	}
}

func TestSSEMultilineAndComments(t *testing.T) {
	t.Parallel()
	r := sse.NewReader(strings.NewReader(": keepalive\n\nevent: x\ndata: a\ndata: b\n\ndata:c\n\n"))
	ev, err := r.Next()
	if err != nil || ev.Event != "x" || string(ev.Data) != "a\nb" {
		t.Fatalf("%+v %v", ev, err)
	}
	ev, err = r.Next()
	if err != nil || string(ev.Data) != "c" {
		t.Fatalf("%+v %v", ev, err)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatal(err)
	}
}
