package inference

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
)

func anthropicClient(e *env) anthropic.Client {
	return anthropic.NewClient(option.WithBaseURL(e.url), option.WithAPIKey("agent-held-nothing"), option.WithMaxRetries(0))
}

var anthListFiles = anthropic.ToolUnionParam{OfTool: &anthropic.ToolParam{
	Name:        "list_files",
	Description: anthropic.String("List files in a directory"),
	InputSchema: anthropic.ToolInputSchemaParam{Properties: map[string]any{"q": map[string]any{"type": "string"}}},
}}

// TestAnthropicClient drives /v1/messages with the official Anthropic Go
// client, against an Anthropic-shaped and (through translation) an
// OpenAI-shaped provider.
func TestAnthropicClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t, startProviders(t))
	c := anthropicClient(e)
	ctx := context.Background()
	for _, model := range []string{"claude", "gpt"} {
		t.Run(model+"/unary", func(t *testing.T) {
			msg, err := c.Messages.New(ctx, anthropic.MessageNewParams{
				Model: model, MaxTokens: 100,
				System:   []anthropic.TextBlockParam{{Text: "be brief"}},
				Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hello there"))},
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(msg.Content) != 1 || msg.Content[0].AsText().Text != "echo: hello there" {
				t.Fatalf("content %+v", msg.Content)
			}
			if msg.StopReason != anthropic.StopReasonEndTurn || msg.Usage.InputTokens == 0 || msg.Usage.OutputTokens == 0 || msg.Model != model {
				t.Fatalf("stop %q usage %+v model %q", msg.StopReason, msg.Usage, msg.Model)
			}
		})
		t.Run(model+"/stream", func(t *testing.T) {
			stream := c.Messages.NewStreaming(ctx, anthropic.MessageNewParams{
				Model: model, MaxTokens: 100,
				Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("one two three four five six seven"))},
			})
			var msg anthropic.Message
			events := 0
			for stream.Next() {
				if err := msg.Accumulate(stream.Current()); err != nil {
					t.Fatal(err)
				}
				events++
			}
			if err := stream.Err(); err != nil {
				t.Fatal(err)
			}
			if events < 6 || len(msg.Content) != 1 || msg.Content[0].AsText().Text != "echo: one two three four five six seven" {
				t.Fatalf("%d events, content %+v", events, msg.Content)
			}
			if msg.Usage.OutputTokens == 0 || msg.StopReason != anthropic.StopReasonEndTurn {
				t.Fatalf("usage %+v stop %q", msg.Usage, msg.StopReason)
			}
		})
		t.Run(model+"/tools", func(t *testing.T) {
			params := anthropic.MessageNewParams{
				Model: model, MaxTokens: 100,
				Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("what files?"))},
				Tools:    []anthropic.ToolUnionParam{anthListFiles},
			}
			stream := c.Messages.NewStreaming(ctx, params)
			var msg anthropic.Message
			for stream.Next() {
				if err := msg.Accumulate(stream.Current()); err != nil {
					t.Fatal(err)
				}
			}
			if err := stream.Err(); err != nil {
				t.Fatal(err)
			}
			if len(msg.Content) != 1 || msg.StopReason != anthropic.StopReasonToolUse {
				t.Fatalf("content %+v stop %q", msg.Content, msg.StopReason)
			}
			use := msg.Content[0].AsToolUse()
			if use.Name != "list_files" || string(use.Input) != `{"q":"what files?"}` || use.ID == "" {
				t.Fatalf("tool use %+v input %s", use, use.Input)
			}
			params.Messages = append(params.Messages, msg.ToParam(),
				anthropic.NewUserMessage(anthropic.NewToolResultBlock(use.ID, "a.txt b.txt", false)))
			final, err := c.Messages.New(ctx, params)
			if err != nil {
				t.Fatal(err)
			}
			if final.Content[0].AsText().Text != "tool said: a.txt b.txt" {
				t.Fatalf("final %+v", final.Content)
			}
		})
	}
	t.Run("models", func(t *testing.T) {
		page, err := c.Models.List(ctx, anthropic.ModelListParams{})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Data) != 7 || page.Data[0].ID != "bad" { // chat aliases only
			t.Fatalf("models %+v", page.Data)
		}
	})
	t.Run("errors", func(t *testing.T) {
		_, err := c.Messages.New(ctx, anthropic.MessageNewParams{Model: "bad", MaxTokens: 10,
			Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("x"))}})
		var apiErr *anthropic.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || !strings.Contains(apiErr.RawJSON(), "invalid_request_error") {
			t.Fatalf("want a 400 in Anthropic's shape: %v", err)
		}
	})
}
