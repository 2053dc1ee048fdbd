package llm_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/nemoclave/nemoclave/sdk/llm"
	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/status"
)

// recorder is an LLM plugin that records what crossed the wire and
// answers with whatever the test case scripted.
type recorder struct {
	plugin.Base
	mu      sync.Mutex
	gotReq  *llm.ChatRequest
	resp    *llm.ChatResponse
	chunks  []*llm.ChatChunk
	err     error
	sendErr chan error // receives send's error when the client goes away
}

func (*recorder) Info() plugin.Info {
	return plugin.Info{Name: "recorder", Version: "0.0.1", Kinds: []plugin.Kind{plugin.KindLLM}}
}

func (r *recorder) ListModels(context.Context) ([]llm.Model, error) {
	return []llm.Model{{ID: "m1", OwnedBy: "me", ContextWindow: 8192, Capabilities: []string{"tools", "vision"}}, {ID: "m2"}}, r.err
}

func (r *recorder) Chat(_ context.Context, req *llm.ChatRequest) (*llm.ChatResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gotReq = req
	return r.resp, r.err
}

func (r *recorder) ChatStream(ctx context.Context, req *llm.ChatRequest, send func(*llm.ChatChunk) error) error {
	r.mu.Lock()
	r.gotReq = req
	r.mu.Unlock()
	for _, c := range r.chunks {
		if err := send(c); err != nil {
			return err
		}
	}
	if r.sendErr != nil {
		// Keep sending until the client's cancellation reaches us.
		for {
			if err := send(&llm.ChatChunk{DeltaText: "more"}); err != nil {
				r.sendErr <- err
				return err
			}
			select {
			case <-ctx.Done():
				r.sendErr <- ctx.Err()
				return ctx.Err()
			case <-time.After(time.Millisecond):
			}
		}
	}
	return r.err
}

func ptr[T any](v T) *T { return &v }

var fullRequest = &llm.ChatRequest{
	Model:  "m1",
	System: "be brief",
	Messages: []llm.Message{
		{Role: llm.RoleUser, Content: []llm.ContentPart{llm.Text("what is this?"), {Image: &llm.Image{MIMEType: "image/png", Data: []byte{0x89, 'P', 'N', 'G'}}}, {Image: &llm.Image{URL: "https://example.com/a.jpg"}}}, Name: "alice"},
		{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{{ID: "c1", Name: "lookup", Arguments: `{"q":"png"`}}},
		{Role: llm.RoleTool, ToolCallID: "c1", Content: []llm.ContentPart{llm.Text("a picture"), llm.Text("")}},
	},
	Tools:       []llm.Tool{{Name: "lookup", Description: "find things", Parameters: json.RawMessage(`{"type":"object","properties":{"q":{"type":"string"}}}`)}},
	ToolChoice:  "auto",
	Temperature: ptr(0.0),
	TopP:        ptr(0.9),
	MaxTokens:   ptr(int64(256)),
	Stop:        []string{"\n\n", "END"},
	User:        "u-42",
	Extra:       json.RawMessage(`{"reasoning":{"effort":"low"}}`),
}

func TestChatRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		req  *llm.ChatRequest
		resp *llm.ChatResponse
	}{
		{"empty", &llm.ChatRequest{}, &llm.ChatResponse{Message: llm.Message{Role: llm.RoleAssistant}}},
		{"full", fullRequest, &llm.ChatResponse{
			ID: "r1", Model: "m1", FinishReason: llm.FinishToolCalls,
			Message: llm.Message{Role: llm.RoleAssistant, Content: []llm.ContentPart{llm.Text("calling")},
				ToolCalls: []llm.ToolCall{{ID: "c2", Name: "lookup", Arguments: `{"q":"x"}`}, {ID: "c3", Name: "other", Arguments: "not json"}}},
			Usage: llm.Usage{InputTokens: 10, OutputTokens: 5, CachedInputTokens: 3},
		}},
		{"zero sampling is not nil", &llm.ChatRequest{Temperature: ptr(0.0), MaxTokens: ptr(int64(0))}, &llm.ChatResponse{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := &recorder{resp: tc.resp}
			p := plugin.InProcess(t, rec).LLM()
			got, err := p.Chat(context.Background(), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.req, rec.gotReq, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("request changed crossing the wire (-sent +received):\n%s", d)
			}
			if d := cmp.Diff(tc.resp, got, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("response changed crossing the wire (-sent +received):\n%s", d)
			}
			if (tc.req.Temperature == nil) != (rec.gotReq.Temperature == nil) {
				t.Errorf("temperature presence lost: sent %v got %v", tc.req.Temperature, rec.gotReq.Temperature)
			}
		})
	}
}

func TestListModelsAndErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := plugin.InProcess(t, &recorder{}).LLM()
	models, err := p.ListModels(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []llm.Model{{ID: "m1", OwnedBy: "me", ContextWindow: 8192, Capabilities: []string{"tools", "vision"}}, {ID: "m2"}}
	if d := cmp.Diff(want, models, cmpopts.EquateEmpty()); d != "" {
		t.Errorf("models (-want +got):\n%s", d)
	}

	for _, code := range []status.Code{status.RateLimited, status.InvalidArgument, status.Unauthenticated, status.NotFound} {
		p := plugin.InProcess(t, &recorder{err: status.Errorf(code, "boom")}).LLM()
		if _, err := p.Chat(ctx, &llm.ChatRequest{}); status.CodeOf(err) != code {
			t.Errorf("Chat error %v: code %v, want %v", err, status.CodeOf(err), code)
		}
		err := p.ChatStream(ctx, &llm.ChatRequest{}, func(*llm.ChatChunk) error { return nil })
		if status.CodeOf(err) != code {
			t.Errorf("ChatStream error %v: code %v, want %v", err, status.CodeOf(err), code)
		}
	}
}

func TestChatStreamRoundTrip(t *testing.T) {
	t.Parallel()
	chunks := []*llm.ChatChunk{
		{ID: "s1", Model: "m1", DeltaText: "Hel"},
		{DeltaText: "lo", ToolCalls: []llm.ToolCallDelta{{Index: 1, ID: "b", Name: "second", ArgumentsDelta: `{"y"`}}},
		{ToolCalls: []llm.ToolCallDelta{{Index: 0, ID: "a", Name: "first", ArgumentsDelta: `{}`}, {Index: 1, ArgumentsDelta: `:2}`}}},
		{FinishReason: llm.FinishToolCalls, Usage: &llm.Usage{InputTokens: 7, OutputTokens: 3}},
	}
	rec := &recorder{chunks: chunks}
	p := plugin.InProcess(t, rec).LLM()
	var got []*llm.ChatChunk
	if err := p.ChatStream(context.Background(), fullRequest, func(c *llm.ChatChunk) error { got = append(got, c); return nil }); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(chunks, got, cmpopts.EquateEmpty()); d != "" {
		t.Errorf("chunks (-sent +received):\n%s", d)
	}
	if d := cmp.Diff(fullRequest, rec.gotReq, cmpopts.EquateEmpty()); d != "" {
		t.Errorf("stream request (-sent +received):\n%s", d)
	}
	want := &llm.ChatResponse{ID: "s1", Model: "m1", FinishReason: llm.FinishToolCalls,
		Message: llm.Message{Role: llm.RoleAssistant, Content: []llm.ContentPart{llm.Text("Hello")},
			ToolCalls: []llm.ToolCall{{ID: "a", Name: "first", Arguments: "{}"}, {ID: "b", Name: "second", Arguments: `{"y":2}`}}},
		Usage: llm.Usage{InputTokens: 7, OutputTokens: 3}}
	if d := cmp.Diff(want, llm.Accumulate(got)); d != "" {
		t.Errorf("Accumulate (-want +got):\n%s", d)
	}
}

func TestChatStreamCallbackErrorCancelsPlugin(t *testing.T) {
	t.Parallel()
	rec := &recorder{chunks: []*llm.ChatChunk{{DeltaText: "a"}}, sendErr: make(chan error, 1)}
	p := plugin.InProcess(t, rec).LLM()
	stop := errors.New("client has had enough")
	n := 0
	err := p.ChatStream(context.Background(), &llm.ChatRequest{}, func(*llm.ChatChunk) error {
		n++
		if n == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Fatalf("ChatStream returned %v, want the callback's error", err)
	}
	select {
	case perr := <-rec.sendErr:
		if perr == nil {
			t.Fatal("plugin saw a nil error")
		}
	case <-time.After(time.Minute):
		t.Fatal("the plugin kept streaming after the client's callback failed")
	}
}

func TestAccumulatorUsageAndNotSupported(t *testing.T) {
	t.Parallel()
	var a llm.Accumulator
	a.Add(&llm.ChatChunk{DeltaText: "x"})
	a.Add(nil)
	if a.UsageReported() {
		t.Error("usage reported without a usage chunk")
	}
	a.Add(&llm.ChatChunk{Usage: &llm.Usage{OutputTokens: 1}})
	a.Add(&llm.ChatChunk{Usage: &llm.Usage{OutputTokens: 4}, FinishReason: llm.FinishStop})
	r := a.Response()
	if !a.UsageReported() || r.Usage.OutputTokens != 4 || r.Message.Text() != "x" || r.FinishReason != llm.FinishStop {
		t.Errorf("response = %+v", r)
	}

	var ns llm.NotSupported
	if _, err := ns.Chat(context.Background(), nil); status.CodeOf(err) != status.NotSupported {
		t.Errorf("NotSupported.Chat: %v", err)
	}
}
