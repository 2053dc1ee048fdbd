package sdktest

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/sdk/llm"
	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/status"
)

var finishReasons = []string{llm.FinishStop, llm.FinishLength, llm.FinishToolCalls, llm.FinishContentFilter}

// LLM checks the Provider contract: ListModels is non-empty with unique
// IDs; Chat answers WithPrompt with an assistant message, a known finish
// reason and sane usage; ChatStream's chunks agree on ID and model,
// finish exactly once at the end and Accumulate to an answer of the same
// shape (the same text WithDeterministic); a failing callback and a
// cancelled context both stop the stream promptly.
func LLM(t *testing.T, p plugin.Plugin, opts ...Option) {
	t.Helper()
	o := collect(opts)
	ctx := suiteContext(t, o)
	c, _ := start(t, p, o)
	prov := c.LLM()

	models, err := prov.ListModels(ctx)
	if err != nil {
		t.Fatalf("ListModels: %v", err)
	}
	if len(models) == 0 {
		t.Fatal("ListModels returned no models; the gateway checks blueprint model names against it")
	}
	ids := map[string]bool{}
	for _, m := range models {
		if m.ID == "" || ids[m.ID] {
			t.Errorf("model ID %q is empty or listed twice", m.ID)
		}
		ids[m.ID] = true
	}
	model := o.model
	if model == "" {
		model = models[0].ID
	} else if !ids[model] {
		t.Errorf("WithModel(%q) is not among ListModels %v", model, slices.Sorted(maps.Keys(ids)))
	}
	req := func() *llm.ChatRequest {
		return &llm.ChatRequest{Model: model, Messages: []llm.Message{{Role: llm.RoleUser, Content: []llm.ContentPart{llm.Text(o.prompt)}}}}
	}

	var chatText string
	t.Run("chat", func(t *testing.T) {
		resp, err := prov.Chat(ctx, req())
		if err != nil {
			t.Fatalf("Chat: %v", err)
		}
		checkAnswer(t, "Chat", resp, resp.Usage != (llm.Usage{}))
		chatText = resp.Message.Text()
	})

	t.Run("stream", func(t *testing.T) {
		var chunks []*llm.ChatChunk
		err := prov.ChatStream(ctx, req(), func(ch *llm.ChatChunk) error {
			chunks = append(chunks, ch)
			return nil
		})
		if err != nil {
			t.Fatalf("ChatStream: %v", err)
		}
		if len(chunks) == 0 {
			t.Fatal("ChatStream sent no chunks")
		}
		var id, mdl string
		finishes, usages := 0, 0
		for i, ch := range chunks {
			if ch.ID != "" {
				if id != "" && ch.ID != id {
					t.Errorf("chunk %d has ID %q, earlier chunks %q", i, ch.ID, id)
				}
				id = ch.ID
			}
			if ch.Model != "" {
				if mdl != "" && ch.Model != mdl {
					t.Errorf("chunk %d has model %q, earlier chunks %q", i, ch.Model, mdl)
				}
				mdl = ch.Model
			}
			if finishes > 0 && (ch.DeltaText != "" || len(ch.ToolCalls) > 0) {
				t.Errorf("chunk %d carries content after the finish reason", i)
			}
			if ch.FinishReason != "" {
				finishes++
			}
			if ch.Usage != nil {
				usages++
			}
		}
		if finishes != 1 {
			t.Errorf("%d chunks carry a finish reason; exactly one (the last with content) must", finishes)
		}
		checkToolDeltas(t, chunks)
		resp := llm.Accumulate(chunks)
		checkAnswer(t, "Accumulate(ChatStream)", resp, usages > 0)
		if o.deterministic && chatText != "" && resp.Message.Text() != chatText {
			t.Errorf("streamed text %q differs from Chat's %q (WithDeterministic)", resp.Message.Text(), chatText)
		}
	})

	t.Run("callback error stops the stream", func(t *testing.T) {
		stop := errors.New("sdktest: client gone")
		calls := 0
		done := make(chan error, 1)
		go func() {
			done <- prov.ChatStream(ctx, req(), func(*llm.ChatChunk) error { calls++; return stop })
		}()
		select {
		case err := <-done:
			if !errors.Is(err, stop) {
				t.Errorf("ChatStream returned %v, want the callback's error", err)
			}
			if calls != 1 {
				t.Errorf("the callback ran %d times after failing the first time", calls)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("ChatStream did not return within 10s of its callback failing")
		}
	})

	t.Run("cancellation stops the stream", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		done := make(chan error, 1)
		go func() {
			done <- prov.ChatStream(cctx, req(), func(*llm.ChatChunk) error { cancel(); return nil })
		}()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) && status.CodeOf(err) != status.Canceled {
				t.Errorf("cancelled ChatStream returned %v, want a cancellation (or nil if it had finished)", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("ChatStream did not return within 10s of its context being cancelled; stop provider work when ctx is done")
		}
	})
}

func checkAnswer(t *testing.T, what string, resp *llm.ChatResponse, usageReported bool) {
	t.Helper()
	if resp.Message.Role != llm.RoleAssistant {
		t.Errorf("%s: role %q, want %q", what, resp.Message.Role, llm.RoleAssistant)
	}
	if resp.Message.Text() == "" && len(resp.Message.ToolCalls) == 0 {
		t.Errorf("%s: the answer has neither text nor tool calls", what)
	}
	if !slices.Contains(finishReasons, resp.FinishReason) {
		t.Errorf("%s: finish reason %q; map the provider's to one of %v", what, resp.FinishReason, finishReasons)
	}
	for _, tc := range resp.Message.ToolCalls {
		if tc.ID == "" || tc.Name == "" {
			t.Errorf("%s: tool call %+v lacks an ID or name; the agent cannot answer it", what, tc)
		}
	}
	if usageReported {
		u := resp.Usage
		if u.OutputTokens <= 0 || u.InputTokens < 0 || u.CachedInputTokens < 0 || u.CachedInputTokens > u.InputTokens {
			t.Errorf("%s: usage %+v is inconsistent (output > 0, 0 <= cached <= input)", what, u)
		}
	}
}

func checkToolDeltas(t *testing.T, chunks []*llm.ChatChunk) {
	t.Helper()
	started := map[int]bool{}
	for i, ch := range chunks {
		for _, d := range ch.ToolCalls {
			if !started[d.Index] && (d.ID == "" || d.Name == "") {
				t.Errorf("chunk %d: the first delta of tool call %d lacks its ID or name", i, d.Index)
			}
			started[d.Index] = true
		}
	}
}
