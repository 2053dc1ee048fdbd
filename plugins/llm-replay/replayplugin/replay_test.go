package replayplugin

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nemoclave/nemoclave/internal/testupstream"
	"github.com/nemoclave/nemoclave/sdk/llm"
	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/sdktest"
	"github.com/nemoclave/nemoclave/sdk/status"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	sdktest.LLM(t, New(), sdktest.WithConfig(`{"cassette":"testdata/conformance.json"}`), sdktest.WithDeterministic())
}

func configured(t *testing.T, cfg map[string]any) llm.Provider {
	t.Helper()
	c := plugin.InProcess(t, New())
	raw, _ := json.Marshal(cfg)
	if diags, err := c.Configure(context.Background(), plugin.ConfigureOptions{Config: raw}); err != nil || len(diags) > 0 {
		t.Fatalf("configure: %v %v", err, diags)
	}
	return c.LLM()
}

func user(s string) llm.Message {
	return llm.Message{Role: llm.RoleUser, Content: []llm.ContentPart{llm.Text(s)}}
}

var filesTools = []llm.Tool{
	{Name: "files__read_file", Parameters: json.RawMessage(`{"type":"object"}`)},
	{Name: "files__list_files", Parameters: json.RawMessage(`{"type":"object"}`)},
}

// TestQuickstartCassette plays the quickstart agent's conversation
// against examples/quickstart/cassette.json, as the offline demo will.
func TestQuickstartCassette(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := configured(t, map[string]any{"cassette": "../../../examples/quickstart/cassette.json"})
	for _, question := range []string{"What files are in my workspace?", "  what FILES are in my workspace ", "Can you show me the files here?"} {
		req := &llm.ChatRequest{Model: "default", System: "You are a helpful agent.", Tools: filesTools, Messages: []llm.Message{user(question)}}
		resp, err := p.Chat(ctx, req)
		if err != nil {
			t.Fatalf("%q: %v", question, err)
		}
		calls := resp.Message.ToolCalls
		if len(calls) != 1 || calls[0].Name != "files__list_files" || calls[0].ID == "" || resp.FinishReason != llm.FinishToolCalls || resp.Model != "default" {
			t.Fatalf("%q: want one call to the namespaced list_files tool, got %+v", question, resp)
		}
		req.Messages = append(req.Messages, resp.Message, llm.Message{Role: llm.RoleTool, ToolCallID: calls[0].ID, Content: []llm.ContentPart{llm.Text("README.md 120\nnotes/")}})
		var streamed []*llm.ChatChunk
		if err := p.ChatStream(ctx, req, func(c *llm.ChatChunk) error { streamed = append(streamed, c); return nil }); err != nil {
			t.Fatal(err)
		}
		final := llm.Accumulate(streamed)
		if len(streamed) < 3 || !strings.Contains(final.Message.Text(), "README.md 120\nnotes/") || final.FinishReason != llm.FinishStop || final.Usage.OutputTokens != 64 {
			t.Fatalf("final answer (%d chunks): %+v", len(streamed), final)
		}
	}
	resp, err := p.Chat(ctx, &llm.ChatRequest{Model: "default", Messages: []llm.Message{user("Write me a poem")}})
	if err != nil || !strings.Contains(resp.Message.Text(), "offline quickstart model") {
		t.Fatalf("catch-all: %v %+v", err, resp)
	}
}

func TestNoRecordingSaysHowToRecord(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "c.json")
	if err := os.WriteFile(path, []byte(`{"version":1,"interactions":[{"match":{"last_user":"hi"},"response":{"text":"hello"}}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	p := configured(t, map[string]any{"cassette": path})
	req := &llm.ChatRequest{Model: "m", Messages: []llm.Message{user("something new")}}
	_, err := p.Chat(context.Background(), req)
	if status.CodeOf(err) != status.NotFound || !strings.Contains(err.Error(), Fingerprint(req)) || !strings.Contains(err.Error(), `mode = "record"`) ||
		!strings.Contains(err.Error(), "something new") {
		t.Fatalf("%v", err)
	}
	err = p.ChatStream(context.Background(), req, func(*llm.ChatChunk) error { return nil })
	if status.CodeOf(err) != status.NotFound {
		t.Fatalf("stream: %v", err)
	}
	if resp, err := p.Chat(context.Background(), &llm.ChatRequest{Messages: []llm.Message{user("Hi!")}}); err != nil || resp.Message.Text() != "hello" {
		t.Fatalf("last_user match: %v", err)
	}
}

func TestFingerprintIgnoresModelParametersAndCallIDs(t *testing.T) {
	t.Parallel()
	temp := 0.3
	a := &llm.ChatRequest{Model: "alias-a", Messages: []llm.Message{user("hi  there"),
		{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{{ID: "call_1", Name: "f", Arguments: `{ "x": 1 }`}}},
		{Role: llm.RoleTool, ToolCallID: "call_1", Content: []llm.ContentPart{llm.Text("r")}}}}
	b := &llm.ChatRequest{Model: "provider-model", Temperature: &temp, Messages: []llm.Message{user("hi there"),
		{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{{ID: "call_XYZ", Name: "f", Arguments: `{"x":1}`}}},
		{Role: llm.RoleTool, ToolCallID: "call_XYZ", Content: []llm.ContentPart{llm.Text("r")}}}}
	if Fingerprint(a) != Fingerprint(b) {
		t.Fatal("fingerprints differ on model, parameters, IDs or white space")
	}
	b.Messages[2].Content[0].Text = "other"
	if Fingerprint(a) == Fingerprint(b) {
		t.Fatal("fingerprint ignores the conversation")
	}
}

// TestRecordThenReplay records from the testupstream stand-in (a separate
// process) and replays the same conversation offline.
func TestRecordThenReplay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	up := testupstream.Start(t, "sk-record-key-0123456789")
	path := filepath.Join(t.TempDir(), "rec.json")
	rec := configured(t, map[string]any{"cassette": path, "mode": "record", "upstream_base_url": up + "/v1", "upstream_api_key": "sk-record-key-0123456789", "upstream_model": "gpt-test"})
	q1 := &llm.ChatRequest{Model: "default", Messages: []llm.Message{user("one two three")}}
	q2 := &llm.ChatRequest{Model: "default", Tools: []llm.Tool{{Name: "lookup"}}, Messages: []llm.Message{user("find it")}}
	r1, err := rec.Chat(ctx, q1)
	if err != nil {
		t.Fatal(err)
	}
	var live []*llm.ChatChunk
	if err := rec.ChatStream(ctx, q2, func(c *llm.ChatChunk) error { live = append(live, c); return nil }); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if strings.Contains(string(b), "sk-record-key") {
		t.Fatal("the upstream key was written to the cassette")
	}
	cas, err := LoadCassette(path, false)
	if err != nil || len(cas.Interactions) != 2 || len(cas.Interactions[1].Chunks) == 0 {
		t.Fatalf("cassette: %v %s", err, b)
	}
	rp := configured(t, map[string]any{"cassette": path})
	p1, err := rp.Chat(ctx, q1)
	if err != nil || p1.Message.Text() != r1.Message.Text() || p1.Message.Text() != "echo: one two three" || p1.Usage != r1.Usage {
		t.Fatalf("replayed %+v (%v), recorded %+v", p1, err, r1)
	}
	var replayed []*llm.ChatChunk
	if err := rp.ChatStream(ctx, q2, func(c *llm.ChatChunk) error { replayed = append(replayed, c); return nil }); err != nil {
		t.Fatal(err)
	}
	a, b2 := llm.Accumulate(live), llm.Accumulate(replayed)
	if len(a.Message.ToolCalls) != 1 || a.Message.ToolCalls[0] != b2.Message.ToolCalls[0] || a.FinishReason != b2.FinishReason || len(live) != len(replayed) {
		t.Fatalf("live %+v replayed %+v", a, b2)
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		`{}`:                                  "cassette is required",
		`{"cassette":"x","mode":"tape"}`:      `mode "tape"`,
		`{"cassette":"x","mode":"record"}`:    "upstream_base_url",
		`{"cassette":"x","mode":"replay"}`:    "",
		`{"cassette":"x","upstream_model":1}`: "not valid JSON",
	} {
		diags := New().ValidateConfig(context.Background(), json.RawMessage(raw))
		if want == "" && len(diags) != 0 || want != "" && (len(diags) == 0 || !strings.Contains(diags[0].Summary, want)) {
			t.Errorf("%s: %+v, want %q", raw, diags, want)
		}
	}
	path := filepath.Join(t.TempDir(), "bad.json")
	_ = os.WriteFile(path, []byte(`{"version":1,"interactions":[{"match":{"default":true,"last_user":"x"},"response":{}}]}`), 0o644)
	if _, err := LoadCassette(path, false); err == nil || !strings.Contains(err.Error(), "exactly one of") {
		t.Fatalf("%v", err)
	}
	if _, err := LoadCassette(filepath.Join(t.TempDir(), "missing.json"), false); err == nil || !strings.Contains(err.Error(), "record") {
		t.Fatalf("%v", err)
	}
}
