package inference

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/nemoclave/nemoclave/sdk/llm"
)

// The answer scan replaced three decodes and a re-encode of every
// forwarded answer and stream event. These are those functions as they
// were (encoding/json all the way); the scan must agree with them on
// every input: the same usage, the same usage-only verdict, and an answer
// that decodes to what their re-encoded one decodes to.

func refUsageOf(data []byte, u llm.Usage, seen bool) (llm.Usage, bool) {
	var env struct {
		Usage    *wireUsage                  `json:"usage"`
		Message  *struct{ Usage *wireUsage } `json:"message"`
		Response *struct{ Usage *wireUsage } `json:"response"`
	}
	if json.Unmarshal(data, &env) != nil {
		return u, seen
	}
	a := answerScan{ok: true, usage: env.Usage, message: env.Message, response: env.Response}
	return a.foldUsage(u, seen)
}

func refUsageOnly(data []byte) bool {
	var c struct {
		Choices []json.RawMessage `json:"choices"`
		Usage   json.RawMessage   `json:"usage"`
	}
	return json.Unmarshal(data, &c) == nil && len(c.Choices) == 0 && len(c.Usage) > 0 && string(c.Usage) != "null"
}

func refWithModel(data []byte, model string) []byte {
	var m map[string]json.RawMessage
	if model == "" || json.Unmarshal(data, &m) != nil {
		return data
	}
	name, _ := json.Marshal(model)
	changed := false
	if _, ok := m["model"]; ok {
		m["model"], changed = name, true
	}
	for _, k := range []string{"message", "response"} {
		var inner map[string]json.RawMessage
		if raw, ok := m[k]; ok && json.Unmarshal(raw, &inner) == nil {
			if _, ok := inner["model"]; ok {
				inner["model"] = name
				m[k], _ = json.Marshal(inner)
				changed = true
			}
		}
	}
	if !changed {
		return data
	}
	out, err := json.Marshal(m)
	if err != nil {
		return data
	}
	return out
}

var answerCorpus = []string{
	// OpenAI chat: a unary answer, stream chunks (usage null in each when
	// include_usage is on), the usage-only chunk.
	`{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-2024","choices":[{"index":0,"message":{"role":"assistant","content":"hi <b>&"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15,"prompt_tokens_details":{"cached_tokens":4}}}`,
	`{"id":"c","object":"chat.completion.chunk","model":"gpt-4o","choices":[{"index":0,"delta":{"content":"x"}}],"usage":null}`,
	`{"id":"c","object":"chat.completion.chunk","model":"gpt-4o","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":7}}`,
	`{"choices":[ ],"usage":{"prompt_tokens":5}}`,
	`{"choices":null,"usage":{}}`,
	`{"choices":{},"usage":{"prompt_tokens":5}}`,
	`{"choices":"no","usage":{"prompt_tokens":5}}`,
	`{"usage":{"prompt_tokens":5},"usage":null}`,
	`{"usage":null,"usage":{"completion_tokens":9}}`,
	`{"usage":{"prompt_tokens":1},"usage":{"completion_tokens":2}}`,
	`{"usage":5,"usage":{"prompt_tokens":1}}`,
	`{"Usage":{"prompt_tokens":8},"CHOICES":[]}`,
	`{"usage":{"prompt_tokens":"8"}}`,
	`{"usage":{"prompt_tokens":8.5}}`,
	// Anthropic: message_start, message_delta, a unary answer.
	`{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4","content":[],"usage":{"input_tokens":10,"cache_read_input_tokens":3,"cache_creation_input_tokens":2,"output_tokens":1}}}`,
	`{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":42}}`,
	`{"id":"msg_2","type":"message","model":"claude","content":[{"type":"text","text":"ok"}],"usage":{"input_tokens":3,"output_tokens":4}}`,
	`{"type":"error","error":{"type":"overloaded_error","message":"busy"}}`,
	`{"message":"a string","usage":{"input_tokens":3}}`,
	`{"message":{"usage":"no"},"usage":{"input_tokens":3}}`,
	`{"message":null,"model":"m"}`,
	// Responses: created / completed events, a unary answer.
	`{"type":"response.created","response":{"id":"resp_1","model":"gpt-5","status":"in_progress","usage":null}}`,
	`{"type":"response.completed","response":{"id":"resp_1","model":"gpt-5","usage":{"input_tokens":20,"input_tokens_details":{"cached_tokens":5},"output_tokens":7}}}`,
	`{"type":"response.output_text.delta","delta":"model"}`,
	`{"id":"resp_2","object":"response","model":"gpt-5","output":[],"usage":{"input_tokens":1,"input_tokens_details":{"cached_tokens":0},"output_tokens":2}}`,
	// Keys: duplicates, escapes, case, nesting, whitespace.
	`{"model":"a","model":"b"}`,
	`{"mod\u0065l":"a","x":1}`,
	`{"Model":"a"}`,
	`{"message":{"model":"a","model":"b"},"message":{"model":"c"}}`,
	`{"message":{"model":"a"},"message":"s"}`,
	`{"response":{"model":"x","usage":{"prompt_tokens":1}},"model":"y"}`,
	"  \n{ \"model\" : \"a\" , \"usage\" : { \"prompt_tokens\" : 2 } }\t",
	`{"model":"alias"}`,
	`{"model":123}`,
	`{"data":{"model":"nested"}}`,
	"{\"model\":\"\xff\xfe\",\"t\":\"\xc3\"}",
	// Not objects, not JSON.
	`[{"model":"a"}]`, `"model"`, `null`, `42`, ``, `{`, `{"model":"a",}`, `{"model":"a"} {}`, `[DONE]`,
	"{\"model\":\"a\x01\"}", `{"a":01}`,
}

func checkAnswer(t *testing.T, data []byte, model string) {
	t.Helper()
	a := scanAnswer(data)
	for _, in := range []struct {
		u    llm.Usage
		seen bool
	}{{llm.Usage{}, false}, {llm.Usage{InputTokens: 7, OutputTokens: 9, CachedInputTokens: 1}, true}} {
		gu, gs := a.foldUsage(in.u, in.seen)
		wu, ws := refUsageOf(data, in.u, in.seen)
		if gu != wu || gs != ws {
			t.Fatalf("usage of %q from %+v/%v: got %+v/%v, want %+v/%v", data, in.u, in.seen, gu, gs, wu, ws)
		}
	}
	if got, want := a.usageOnly(), refUsageOnly(data); got != want {
		t.Fatalf("usage-only %q: got %v, want %v", data, got, want)
	}
	got, want := a.withModel(data, modelName(model)), refWithModel(data, model)
	if bytes.Equal(want, data) != bytes.Equal(got, data) && !sameJSON(got, want) {
		t.Fatalf("model %q in %q: got %q, want %q", model, data, got, want)
	}
	if !bytes.Equal(want, data) && !sameJSON(got, want) {
		t.Fatalf("model %q in %q: got %q, which decodes differently from %q", model, data, got, want)
	}
	if bytes.Equal(want, data) && !bytes.Equal(got, data) {
		t.Fatalf("model %q in %q: changed to %q, want unchanged", model, data, got)
	}
}

func sameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

func TestScanAnswerAgreesWithDecoding(t *testing.T) {
	t.Parallel()
	for _, s := range answerCorpus {
		for _, model := range []string{"alias", "", "a", "<&>", "gpt-4o"} {
			checkAnswer(t, []byte(s), model)
		}
	}
}

func TestScanAnswerKeepsBytes(t *testing.T) {
	t.Parallel()
	in := []byte(`{"id":"x", "model" : "gpt-4o-2024","choices":[{"delta":{"content":"<b>"}}],"usage":null}`)
	a := scanAnswer(in)
	got := string(a.withModel(in, modelName("alias")))
	want := `{"id":"x", "model" : "alias","choices":[{"delta":{"content":"<b>"}}],"usage":null}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if a.usageOnly() {
		t.Fatal("a content chunk read as the usage-only chunk")
	}
	in = []byte(`{"type":"message_start","message":{"model":"claude","usage":{"input_tokens":10,"cache_read_input_tokens":3,"output_tokens":1}}}`)
	a = scanAnswer(in)
	if got := string(a.withModel(in, modelName("m"))); got != `{"type":"message_start","message":{"model":"m","usage":{"input_tokens":10,"cache_read_input_tokens":3,"output_tokens":1}}}` {
		t.Fatalf("message_start: %s", got)
	}
	if u, seen := a.foldUsage(llm.Usage{}, false); !seen || u != (llm.Usage{InputTokens: 13, CachedInputTokens: 3, OutputTokens: 1}) {
		t.Fatalf("message_start usage: %+v %v", u, seen)
	}
}

func TestSSEData(t *testing.T) {
	t.Parallel()
	for ev, want := range map[string]string{
		"data: {\"a\":1}":                    `{"a":1}`,
		"event: x\r\ndata:{\"a\":1}\r":       `{"a":1}`,
		"data: one\ndata: two\ndata:three":   "one\ntwo\nthree",
		"event: ping":                        "",
		"data: a\n: comment\ndata: b":        "a\nb",
		"":                                   "",
		"data:":                              "",
		"id: 1\ndata:  two spaces\nretry: 5": " two spaces",
	} {
		if got := string(sseData([]byte(ev))); got != want {
			t.Errorf("sseData(%q) = %q, want %q", ev, got, want)
		}
	}
}

func FuzzScanAnswer(f *testing.F) {
	for _, s := range answerCorpus {
		f.Add([]byte(s), "alias")
	}
	f.Fuzz(func(t *testing.T, data []byte, model string) {
		checkAnswer(t, data, model)
	})
}
