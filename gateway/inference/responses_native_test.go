package inference

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/responses"
)

// TestResponsesNativePassThrough sends a Responses request modelled on the
// API reference (reasoning items with encrypted state, a hosted tool,
// strict function tools, text.format, include, truncation) to a provider
// that speaks the Responses API (responses_api = true) and checks it
// arrived unchanged but for the model name and the credential, unary and
// streaming, that the answer is the provider's own (its response id, its
// event sequence) under the agent's model name, and that it was metered.
// The same request to a server not configured for the API is translated
// to chat completions.
func TestResponsesNativePassThrough(t *testing.T) {
	t.Parallel()
	p := startProviders(t)
	e := newEnv(t, p, nativeResponses(t, p))
	raw, err := os.ReadFile("testdata/passthrough/openai_responses.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, stream := range []bool{false, true} {
		name := "unary"
		if stream {
			name = "stream"
		}
		t.Run(name, func(t *testing.T) {
			sent := jsonObject(t, raw)
			sent["model"] = "gpt-native"
			if stream {
				sent["stream"] = true
			}
			body, _ := json.Marshal(sent)
			before := e.router.Status().Usage.TokensToday
			code, hdr, answer := e.post(t, "/v1/responses", string(body), map[string]string{"Authorization": "Bearer agent-fake-key", "OpenAI-Beta": "responses=experimental"})
			if code != http.StatusOK {
				t.Fatalf("status %d: %s", code, answer)
			}
			got := lastRequest(t, e.upstream)
			if got.Path != "/v1/responses" {
				t.Fatalf("provider got %s, want /v1/responses", got.Path)
			}
			want := jsonObject(t, body)
			want["model"] = "gpt-test"
			if recv := jsonObject(t, got.Body); !reflect.DeepEqual(recv, want) {
				a, _ := json.MarshalIndent(recv, "", " ")
				b, _ := json.MarshalIndent(want, "", " ")
				t.Fatalf("provider received\n%s\nwant\n%s", a, b)
			}
			if g := got.Headers.Get("Authorization"); g != "Bearer "+upstreamKey {
				t.Errorf("provider did not get the plugin's key: %q", g)
			}
			if g := got.Headers.Get("OpenAI-Beta"); g != "responses=experimental" {
				t.Errorf("OpenAI-Beta: provider got %q", g)
			}
			if strings.Contains(answer, upstreamKey) || strings.Contains(answer, e.upstream) || strings.Contains(answer, `"gpt-test"`) {
				t.Fatalf("answer leaks the key, the upstream URL or the provider's model name: %s", answer)
			}
			if hdr.Get(RouteHeader) != "gpt-native openai-native" {
				t.Fatalf("route header %q", hdr.Get(RouteHeader))
			}
			var final struct {
				ID    string `json:"id"`
				Model string `json:"model"`
				Usage struct {
					TotalTokens int64 `json:"total_tokens"`
				} `json:"usage"`
			}
			if !stream {
				if err := json.Unmarshal([]byte(answer), &final); err != nil {
					t.Fatal(err)
				}
			} else {
				if !strings.HasPrefix(hdr.Get("Content-Type"), "text/event-stream") {
					t.Fatalf("content type %q", hdr.Get("Content-Type"))
				}
				for _, ev := range []string{"event: response.created", "event: response.output_item.added", "event: response.function_call_arguments.delta", "event: response.completed"} {
					if !strings.Contains(answer, ev) {
						t.Fatalf("stream lacks %q:\n%s", ev, answer)
					}
				}
				i := strings.Index(answer, "event: response.completed\ndata: ")
				line, _, _ := strings.Cut(answer[i+len("event: response.completed\ndata: "):], "\n")
				var ev struct {
					Response json.RawMessage `json:"response"`
				}
				if err := json.Unmarshal([]byte(line), &ev); err != nil {
					t.Fatalf("%v in %s", err, line)
				}
				if err := json.Unmarshal(ev.Response, &final); err != nil {
					t.Fatal(err)
				}
			}
			if !strings.HasPrefix(final.ID, "resp_upstream") || final.Model != "gpt-native" || final.Usage.TotalTokens == 0 {
				t.Fatalf("answer is not the provider's response under the agent's model name: %+v", final)
			}
			if after := e.router.Status().Usage.TokensToday; after-before != final.Usage.TotalTokens {
				t.Fatalf("metered %d tokens, the provider reported %d", after-before, final.Usage.TotalTokens)
			}
		})
	}
	t.Run("not-configured-translates", func(t *testing.T) {
		sent := jsonObject(t, raw)
		sent["model"] = "gpt"
		body, _ := json.Marshal(sent)
		if code, _, answer := e.post(t, "/v1/responses", string(body), nil); code != http.StatusOK {
			t.Fatalf("status %d: %s", code, answer)
		}
		if got := lastRequest(t, e.upstream); got.Path != "/v1/chat/completions" {
			t.Fatalf("a server without responses_api got %s", got.Path)
		}
	})
	// An item the translation does not model reaches a native provider,
	// and is refused with a clear 400 by a translating route.
	t.Run("untranslatable-input", func(t *testing.T) {
		body := `{"model":"%s","input":[{"type":"item_reference","id":"msg_123"},{"role":"user","content":"hi"}]}`
		code, _, answer := e.post(t, "/v1/responses", strings.Replace(body, "%s", "gpt", 1), nil)
		if code != http.StatusBadRequest || !strings.Contains(answer, "item_reference") {
			t.Fatalf("translating route: status %d: %s", code, answer)
		}
		code, _, _ = e.post(t, "/v1/responses", strings.Replace(body, "%s", "gpt-native", 1), nil)
		got := lastRequest(t, e.upstream)
		if got.Path != "/v1/responses" || !strings.Contains(string(got.Body), "item_reference") {
			t.Fatalf("native route did not forward the request (status %d): %s %s", code, got.Path, got.Body)
		}
	})
	// A native provider that fails before answering falls back to a
	// translated route, as chat completions do.
	t.Run("fallback-to-translation", func(t *testing.T) {
		code, hdr, answer := e.post(t, "/v1/responses", `{"model":"native-then-claude","input":"hello"}`, nil)
		if code != http.StatusOK || hdr.Get(RouteHeader) != "claude anthropic" || !strings.Contains(answer, "echo: hello") {
			t.Fatalf("status %d route %q: %s", code, hdr.Get(RouteHeader), answer)
		}
	})
}

// TestResponsesClientNative drives a native route with openai-go's
// Responses client: a streamed function call, then the tool output sent
// with previous_response_id, which only the provider stored.
func TestResponsesClientNative(t *testing.T) {
	t.Parallel()
	p := startProviders(t)
	e := newEnv(t, p, nativeResponses(t, p))
	c := openaiClient(e)
	ctx := context.Background()
	stream := c.Responses.NewStreaming(ctx, responses.ResponseNewParams{
		Model: "gpt-native",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("what is here?")},
		Tools: []responses.ToolUnionParam{responsesTool},
	})
	var types []string
	var first responses.Response
	for stream.Next() {
		ev := stream.Current()
		types = append(types, ev.Type)
		if ev.Type == "response.completed" {
			first = ev.Response
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
	if first.Model != "gpt-native" || first.Usage.InputTokens == 0 || !strings.HasPrefix(first.ID, "resp_upstream") {
		t.Fatalf("first response %+v", first)
	}
	call := functionCall(t, &first)
	out := responses.ResponseInputItemParamOfFunctionCallOutput("a.txt b.txt")
	out.OfFunctionCallOutput.CallID = openai.String(call.CallID)
	stream = c.Responses.NewStreaming(ctx, responses.ResponseNewParams{
		Model:              "gpt-native",
		PreviousResponseID: openai.String(first.ID),
		Input:              responses.ResponseNewParamsInputUnion{OfInputItemList: responses.ResponseInputParam{out}},
		Tools:              []responses.ToolUnionParam{responsesTool},
	})
	var text strings.Builder
	for stream.Next() {
		if ev := stream.Current(); ev.Type == "response.output_text.delta" {
			text.WriteString(ev.Delta)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if text.String() != "tool said: a.txt b.txt" {
		t.Fatalf("second turn streamed %q", text.String())
	}
	if got := lastRequest(t, e.upstream); got.Path != "/v1/responses" || !strings.Contains(string(got.Body), first.ID) {
		t.Fatalf("the second turn did not reach the provider with its previous_response_id: %s %s", got.Path, got.Body)
	}
	// Unary, with the provider's answer passed as it is.
	resp, err := c.Responses.New(ctx, responses.ResponseNewParams{
		Model: "gpt-native",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hello there")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.OutputText() != "echo: hello there" || resp.Model != "gpt-native" || resp.Usage.OutputTokens == 0 {
		t.Fatalf("unary response %+v", resp)
	}
}

// TestResponsesStoredAtProvider reads and deletes, with openai-go's
// Responses client, a response a native route left stored at the
// provider (store defaults to true): GET and DELETE /v1/responses/{id}
// reach the provider with its key, past the default route's provider,
// which does not speak the Responses API; a deleted response is then a
// 404 from both.
func TestResponsesStoredAtProvider(t *testing.T) {
	t.Parallel()
	p := startProviders(t)
	e := newEnv(t, p, nativeResponses(t, p))
	c := openaiClient(e)
	ctx := context.Background()
	created, err := c.Responses.New(ctx, responses.ResponseNewParams{
		Model: "gpt-native",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("keep this")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(created.ID, "resp_upstream") {
		t.Fatalf("the response %q is not the provider's own", created.ID)
	}
	got, err := c.Responses.Get(ctx, created.ID, responses.ResponseGetParams{})
	if err != nil {
		t.Fatalf("GET of the provider's stored response: %v", err)
	}
	if got.ID != created.ID || got.OutputText() != "echo: keep this" || got.Model != "gpt-native" {
		t.Fatalf("GET answered id %q, text %q, model %q; want %q, %q, gpt-native", got.ID, got.OutputText(), got.Model, created.ID, "echo: keep this")
	}
	rec := lastRequest(t, e.upstream)
	if rec.Method != http.MethodGet || rec.Path != "/v1/responses/"+created.ID || rec.Headers.Get("Authorization") != "Bearer "+upstreamKey || (len(rec.Body) != 0 && string(rec.Body) != "null") {
		t.Fatalf("the provider saw %s %s (authorization %q, body %q), want GET /v1/responses/%s with the injected key and no body",
			rec.Method, rec.Path, rec.Headers.Get("Authorization"), rec.Body, created.ID)
	}
	if err := c.Responses.Delete(ctx, created.ID); err != nil {
		t.Fatalf("DELETE of the provider's stored response: %v", err)
	}
	if rec := lastRequest(t, e.upstream); rec.Method != http.MethodDelete || rec.Path != "/v1/responses/"+created.ID {
		t.Fatalf("the provider saw %s %s, want DELETE /v1/responses/%s", rec.Method, rec.Path, created.ID)
	}
	_, err = c.Responses.Get(ctx, created.ID, responses.ResponseGetParams{})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound || !strings.Contains(apiErr.Message, "not stored") {
		t.Fatalf("GET of a deleted response: %v, want the gateway's 404", err)
	}
	if err := c.Responses.Delete(ctx, created.ID); !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound {
		t.Fatalf("DELETE of a deleted response: %v, want 404", err)
	}
	// A response the gateway stored (a translated route) is still its own.
	local, err := c.Responses.New(ctx, responses.ResponseNewParams{
		Model: "gpt",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("local")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.Responses.Get(ctx, local.ID, responses.ResponseGetParams{}); err != nil || got.ID != local.ID {
		t.Fatalf("GET of the gateway's stored response: %v %+v", err, got)
	}
	if rec := lastRequest(t, e.upstream); rec.Method != http.MethodPost {
		t.Fatalf("the gateway's own stored response went to the provider: %s %s", rec.Method, rec.Path)
	}
}
