package toolloop

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/nemoclave/nemoclave/internal/wire/openai"
)

type echoTools struct{ calls []string }

func (e *echoTools) List(context.Context) []openai.Tool {
	return []openai.Tool{{Type: "function", Function: openai.Function{Name: "echo", Parameters: json.RawMessage(`{"type":"object"}`)}}}
}

func (e *echoTools) Call(_ context.Context, name string, args json.RawMessage) (string, error) {
	e.calls = append(e.calls, name+" "+string(args))
	if strings.Contains(string(args), "fail") {
		return "", fmt.Errorf("echo refused %s", args)
	}
	return "echoed " + string(args), nil
}

// Two tool calls streamed interleaved by index come back whole and in
// order; their results (one a failure the model is told about) go back as
// tool messages, and the second answer's text streams out.
func TestStreamedParallelCalls(t *testing.T) {
	var got []openai.ChatRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req openai.ChatRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || !req.Stream || r.URL.Path != "/v1/chat/completions" {
			t.Errorf("request: %v stream=%v path=%s", err, req.Stream, r.URL.Path)
		}
		got = append(got, req)
		w.Header().Set("Content-Type", "text/event-stream")
		if len(got) == 1 {
			for _, d := range []string{
				`{"choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"a","type":"function","function":{"name":"echo","arguments":""}}]}}]}`,
				`{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"b","type":"function","function":{"name":"echo","arguments":"{\"x\":"}}]}}]}`,
				`{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"x\":\"fail\"}"}}]}}]}`,
				`{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"2}"}}]},"finish_reason":"tool_calls"}]}`,
			} {
				fmt.Fprintf(w, "data: %s\n\n", d)
			}
			fmt.Fprint(w, "data: [DONE]\n\n")
			return
		}
		fmt.Fprint(w, `data: {"choices":[{"index":0,"delta":{"content":"all "}}]}`+"\n\n")
		fmt.Fprint(w, `data: {"choices":[{"index":0,"delta":{"content":"done"},"finish_reason":"stop"}]}`+"\n\n")
		fmt.Fprint(w, "data: [DONE]\n\n")
	}))
	defer srv.Close()
	tools := &echoTools{}
	var text bytes.Buffer
	var toolErrs []string
	l := &Loop{Client: &Client{BaseURL: srv.URL + "/v1", Stream: true}, Model: "m", Tools: tools, MaxSteps: 4, Text: &text,
		OnToolError: func(name string, err error) { toolErrs = append(toolErrs, err.Error()) }}
	history, answer, err := l.Turn(context.Background(), []openai.Message{UserMessage("go")})
	if err != nil {
		t.Fatal(err)
	}
	if answer != "all done" || text.String() != "all done\n" {
		t.Fatalf("answer %q, text %q", answer, text.String())
	}
	if want := []string{`echo {"x":"fail"}`, `echo {"x":2}`}; fmt.Sprint(tools.calls) != fmt.Sprint(want) {
		t.Fatalf("calls %q, want %q", tools.calls, want)
	}
	if len(toolErrs) != 1 {
		t.Fatalf("tool errors %q", toolErrs)
	}
	// user, assistant(2 calls), tool a, tool b, assistant answer
	if len(history) != 5 || history[2].ToolCallID != "a" || history[3].ToolCallID != "b" || !strings.Contains(TextOf(history[2]), "echo refused") {
		t.Fatalf("history %+v", history)
	}
	if len(got) != 2 || len(got[1].Messages) != 4 || len(got[1].Tools) != 1 {
		t.Fatalf("second request: %+v", got[1])
	}
}

// A gateway refusal reaches the caller with the gateway's message (it says
// what to do); a loop that never ends is cut at MaxSteps.
func TestRefusalAndStepBound(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Test") == "refuse" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprint(w, `{"error":{"message":"daily token budget exhausted; raise the budget","type":"rate_limit_error"}}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"id":"x","choices":[{"index":0,"finish_reason":"tool_calls","message":{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"echo","arguments":"{}"}}]}}]}`)
	}))
	defer srv.Close()
	l := &Loop{Client: &Client{BaseURL: srv.URL + "/v1", Header: http.Header{"X-Test": {"refuse"}}}, Model: "m", MaxSteps: 3}
	if _, _, err := l.Turn(context.Background(), []openai.Message{UserMessage("go")}); err == nil ||
		!strings.Contains(err.Error(), "429") || !strings.Contains(err.Error(), "raise the budget") {
		t.Fatalf("refusal: %v", err)
	}
	l = &Loop{Client: &Client{BaseURL: srv.URL + "/v1"}, Model: "m", Tools: &echoTools{}, MaxSteps: 3}
	if _, _, err := l.Turn(context.Background(), []openai.Message{UserMessage("go")}); err == nil || !strings.Contains(err.Error(), "3 model calls") {
		t.Fatalf("step bound: %v", err)
	}
}
