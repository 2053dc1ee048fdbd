package inference

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"
)

func openaiClient(e *env, opts ...option.RequestOption) openai.Client {
	return openai.NewClient(append([]option.RequestOption{
		option.WithBaseURL(e.url + "/v1/"),
		option.WithAPIKey("agent-held-nothing"),
		option.WithMaxRetries(0),
	}, opts...)...)
}

var listFilesTool = openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
	Name:        "list_files",
	Description: openai.String("List files in a directory"),
	Parameters:  shared.FunctionParameters{"type": "object", "properties": map[string]any{"q": map[string]any{"type": "string"}}},
})

// TestOpenAIClient drives the gateway with the official OpenAI Go client,
// against both an OpenAI-shaped and (through translation) an
// Anthropic-shaped provider.
func TestOpenAIClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t, startProviders(t))
	c := openaiClient(e)
	ctx := context.Background()
	for _, model := range []string{"gpt", "claude"} {
		t.Run(model+"/unary", func(t *testing.T) {
			var raw *http.Response
			resp, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
				Model:    model,
				Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("be brief"), openai.UserMessage("hello there")},
			}, option.WithResponseInto(&raw))
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.Choices[0].Message.Content; got != "echo: hello there" {
				t.Fatalf("content %q", got)
			}
			if resp.Model != model || resp.Usage.PromptTokens == 0 || resp.Usage.CompletionTokens == 0 {
				t.Fatalf("model %q usage %+v", resp.Model, resp.Usage)
			}
			if resp.Choices[0].FinishReason != "stop" {
				t.Fatalf("finish %q", resp.Choices[0].FinishReason)
			}
			if raw.Header.Get(OverheadHeader) == "" || !strings.HasPrefix(raw.Header.Get(RouteHeader), model+" ") {
				t.Fatalf("headers %v", raw.Header)
			}
		})
		t.Run(model+"/stream", func(t *testing.T) {
			stream := c.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
				Model:         model,
				Messages:      []openai.ChatCompletionMessageParamUnion{openai.UserMessage("one two three four five six seven")},
				StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
			})
			var acc openai.ChatCompletionAccumulator
			chunks := 0
			for stream.Next() {
				acc.AddChunk(stream.Current())
				chunks++
			}
			if err := stream.Err(); err != nil {
				t.Fatal(err)
			}
			if chunks < 3 {
				t.Fatalf("want the answer in several chunks, got %d", chunks)
			}
			if got := acc.Choices[0].Message.Content; got != "echo: one two three four five six seven" {
				t.Fatalf("content %q", got)
			}
			if acc.Usage.PromptTokens == 0 || acc.Usage.CompletionTokens == 0 {
				t.Fatalf("no usage from stream: %+v", acc.Usage)
			}
		})
		t.Run(model+"/tools", func(t *testing.T) {
			params := openai.ChatCompletionNewParams{
				Model:    model,
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("what files?")},
				Tools:    []openai.ChatCompletionToolUnionParam{listFilesTool},
			}
			resp, err := c.Chat.Completions.New(ctx, params)
			if err != nil {
				t.Fatal(err)
			}
			calls := resp.Choices[0].Message.ToolCalls
			if len(calls) != 1 || calls[0].Function.Name != "list_files" || calls[0].Function.Arguments != `{"q":"what files?"}` || resp.Choices[0].FinishReason != "tool_calls" {
				t.Fatalf("tool calls %+v finish %q", calls, resp.Choices[0].FinishReason)
			}
			params.Messages = append(params.Messages, resp.Choices[0].Message.ToParam(), openai.ToolMessage("a.txt b.txt", calls[0].ID))
			// Second turn streamed, to cover tool results through streams.
			stream := c.Chat.Completions.NewStreaming(ctx, params)
			var acc openai.ChatCompletionAccumulator
			for stream.Next() {
				acc.AddChunk(stream.Current())
			}
			if err := stream.Err(); err != nil {
				t.Fatal(err)
			}
			if got := acc.Choices[0].Message.Content; got != "tool said: a.txt b.txt" {
				t.Fatalf("content %q", got)
			}
		})
		t.Run(model+"/stream-tools", func(t *testing.T) {
			stream := c.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
				Model:    model,
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("find")},
				Tools:    []openai.ChatCompletionToolUnionParam{listFilesTool},
			})
			var acc openai.ChatCompletionAccumulator
			for stream.Next() {
				acc.AddChunk(stream.Current())
			}
			if err := stream.Err(); err != nil {
				t.Fatal(err)
			}
			calls := acc.Choices[0].Message.ToolCalls
			if len(calls) != 1 || calls[0].Function.Name != "list_files" || calls[0].Function.Arguments != `{"q":"find"}` || calls[0].ID == "" {
				t.Fatalf("streamed tool calls %+v", calls)
			}
		})
	}
	t.Run("embeddings", func(t *testing.T) {
		resp, err := c.Embeddings.New(ctx, openai.EmbeddingNewParams{
			Model: "embed",
			Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"a b", "hello big world"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Data) != 2 || resp.Data[1].Embedding[0] != 15 || resp.Data[1].Embedding[1] != 3 || resp.Usage.PromptTokens != 5 {
			t.Fatalf("embeddings %+v", resp)
		}
		b64, err := c.Embeddings.New(ctx, openai.EmbeddingNewParams{
			Model: "embed", EncodingFormat: openai.EmbeddingNewParamsEncodingFormatBase64,
			Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("hello big world")},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(b64.Data) != 1 || len(b64.Data[0].Embedding) != 3 || b64.Data[0].Embedding[0] != 15 {
			t.Fatalf("base64 embeddings %+v", b64.Data)
		}
		// Through the llm-openai plugin's embeddings kind to the upstream.
		up, err := c.Embeddings.New(ctx, openai.EmbeddingNewParams{
			Model: "oai-embed", Dimensions: openai.Int(6),
			Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"one", "two words"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(up.Data) != 2 || len(up.Data[0].Embedding) != 6 || up.Usage.PromptTokens != 3 || up.Model != "oai-embed" {
			t.Fatalf("upstream embeddings %+v", up)
		}
	})
	t.Run("models", func(t *testing.T) {
		page, err := c.Models.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, m := range page.Data {
			ids = append(ids, m.ID)
		}
		if got := strings.Join(ids, ","); got != "bad,broken,claude,flaky,gpt,leaky,leaky2" {
			t.Fatalf("models %s", got)
		}
	})
	t.Run("errors", func(t *testing.T) {
		_, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "bad", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("x")}})
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || !strings.Contains(apiErr.Message, "bad parameter") {
			t.Fatalf("a 400 must reach the agent without fallback: %v", err)
		}
		_, err = c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "broken", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("x")}})
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 503 || !strings.Contains(apiErr.Message, "every route failed") {
			t.Fatalf("want 503 after retries: %v", err)
		}
		stream := c.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{Model: "broken", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("x")}})
		for stream.Next() {
		}
		if !errors.As(stream.Err(), &apiErr) || apiErr.StatusCode != 503 {
			t.Fatalf("streaming request failing before the first byte must be a plain HTTP error: %v", stream.Err())
		}
	})
}
