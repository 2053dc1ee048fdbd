package inference

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/responses"
)

var responsesTool = responses.ToolUnionParam{OfFunction: &responses.FunctionToolParam{
	Name:        "list_files",
	Description: openai.String("List files in a directory"),
	Parameters:  map[string]any{"type": "object", "properties": map[string]any{"q": map[string]any{"type": "string"}}},
	Strict:      openai.Bool(false),
}}

// TestResponsesClient drives POST /v1/responses with openai-go's Responses
// client, unary and streaming, with a function tool round trip through
// previous_response_id, against an OpenAI-shaped and (translated) an
// Anthropic-shaped provider.
func TestResponsesClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t, startProviders(t))
	c := openaiClient(e)
	ctx := context.Background()
	for _, model := range []string{"gpt", "claude"} {
		t.Run(model+"/unary", func(t *testing.T) {
			resp, err := c.Responses.New(ctx, responses.ResponseNewParams{
				Model:        model,
				Instructions: openai.String("be brief"),
				Input:        responses.ResponseNewParamsInputUnion{OfString: openai.String("hello there")},
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.OutputText(); got != "echo: hello there" {
				t.Fatalf("output %q", got)
			}
			if resp.Status != "completed" || resp.Model != model || resp.Usage.InputTokens == 0 || resp.Usage.OutputTokens == 0 || !strings.HasPrefix(resp.ID, "resp_") {
				t.Fatalf("response %+v", resp)
			}
			got, err := c.Responses.Get(ctx, resp.ID, responses.ResponseGetParams{})
			if err != nil || got.OutputText() != "echo: hello there" {
				t.Fatalf("get stored response: %v %+v", err, got)
			}
			if err := c.Responses.Delete(ctx, resp.ID); err != nil {
				t.Fatalf("delete: %v", err)
			}
			_, err = c.Responses.Get(ctx, resp.ID, responses.ResponseGetParams{})
			var apiErr *openai.Error
			if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound {
				t.Fatalf("get after delete: want 404, got %v", err)
			}
		})
		t.Run(model+"/tools-unary", func(t *testing.T) {
			first, err := c.Responses.New(ctx, responses.ResponseNewParams{
				Model: model,
				Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("what is here?")},
				Tools: []responses.ToolUnionParam{responsesTool},
			})
			if err != nil {
				t.Fatal(err)
			}
			call := functionCall(t, first)
			out := responses.ResponseInputItemParamOfFunctionCallOutput("a.txt b.txt")
			out.OfFunctionCallOutput.CallID = openai.String(call.CallID)
			second, err := c.Responses.New(ctx, responses.ResponseNewParams{
				Model:              model,
				PreviousResponseID: openai.String(first.ID),
				Input:              responses.ResponseNewParamsInputUnion{OfInputItemList: responses.ResponseInputParam{out}},
				Tools:              []responses.ToolUnionParam{responsesTool},
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := second.OutputText(); got != "tool said: a.txt b.txt" {
				t.Fatalf("second turn output %q", got)
			}
		})
		t.Run(model+"/tools-stream", func(t *testing.T) {
			stream := c.Responses.NewStreaming(ctx, responses.ResponseNewParams{
				Model: model,
				Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("what is here?")},
				Tools: []responses.ToolUnionParam{responsesTool},
				Store: openai.Bool(false),
			})
			var types []string
			var final responses.Response
			for stream.Next() {
				ev := stream.Current()
				types = append(types, ev.Type)
				if ev.Type == "response.completed" {
					final = ev.Response
				}
			}
			if err := stream.Err(); err != nil {
				t.Fatal(err)
			}
			want := []string{"response.created", "response.in_progress", "response.output_item.added", "response.function_call_arguments.delta",
				"response.function_call_arguments.done", "response.output_item.done", "response.completed"}
			if !isSubsequence(want, types) {
				t.Fatalf("event sequence %v does not contain %v in order", types, want)
			}
			call := functionCall(t, &final)
			if final.Usage.InputTokens == 0 {
				t.Fatalf("no usage in response.completed: %+v", final.Usage)
			}
			// store: false keeps nothing, so the conversation is sent whole.
			if _, err := c.Responses.Get(ctx, final.ID, responses.ResponseGetParams{}); err == nil {
				t.Fatal("a store:false response was stored")
			}
			out := responses.ResponseInputItemParamOfFunctionCallOutput("a.txt")
			out.OfFunctionCallOutput.CallID = openai.String(call.CallID)
			stream = c.Responses.NewStreaming(ctx, responses.ResponseNewParams{
				Model: model,
				Input: responses.ResponseNewParamsInputUnion{OfInputItemList: responses.ResponseInputParam{
					responses.ResponseInputItemParamOfMessage("what is here?", responses.EasyInputMessageRoleUser),
					responses.ResponseInputItemParamOfFunctionCall(call.Arguments.OfString, call.CallID, call.Name),
					out,
				}},
				Tools: []responses.ToolUnionParam{responsesTool},
			})
			var text strings.Builder
			types = nil
			for stream.Next() {
				ev := stream.Current()
				types = append(types, ev.Type)
				if ev.Type == "response.output_text.delta" {
					text.WriteString(ev.Delta)
				}
			}
			if err := stream.Err(); err != nil {
				t.Fatal(err)
			}
			if text.String() != "tool said: a.txt" {
				t.Fatalf("streamed text %q", text.String())
			}
			want = []string{"response.created", "response.output_item.added", "response.content_part.added", "response.output_text.delta",
				"response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed"}
			if !isSubsequence(want, types) {
				t.Fatalf("event sequence %v does not contain %v in order", types, want)
			}
		})
	}
	t.Run("unknown-previous", func(t *testing.T) {
		_, err := c.Responses.New(ctx, responses.ResponseNewParams{Model: "gpt", PreviousResponseID: openai.String("resp_nope"),
			Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")}})
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound || !strings.Contains(apiErr.Message, "store") {
			t.Fatalf("want a 404 that explains the store, got %v", err)
		}
	})
	// Codex sends a hosted tool and a tool namespace with every request:
	// a translated route leaves both out and offers the function tools.
	t.Run("hosted-tools-and-namespaces-left-out", func(t *testing.T) {
		status, _, body := e.post(t, "/v1/responses", `{"model":"gpt","input":"hi","tools":[{"type":"web_search","external_web_access":true},`+
			`{"type":"namespace","name":"multi_agent_v1","description":"sub-agents","tools":[{"type":"function","name":"spawn_agent","parameters":{"type":"object"}}]},`+
			`{"type":"function","name":"list_files","parameters":{"type":"object","properties":{}}}]}`, nil)
		if status != http.StatusOK || !strings.Contains(body, `"name":"list_files"`) || strings.Contains(body, "spawn_agent") {
			t.Fatalf("status %d body %s", status, body)
		}
	})
}

func functionCall(t *testing.T, r *responses.Response) responses.ResponseOutputItemUnion {
	t.Helper()
	for _, it := range r.Output {
		if it.Type == "function_call" {
			if it.CallID == "" || it.Name != "list_files" {
				t.Fatalf("function call item %+v", it)
			}
			return it
		}
	}
	t.Fatalf("no function_call in output %+v", r.Output)
	return responses.ResponseOutputItemUnion{}
}

// isSubsequence reports whether want appears in got in order.
func isSubsequence(want, got []string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want) || slices.Equal(want, got)
}
