package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// scriptedModel is an OpenAI-compatible upstream stand-in: the first call
// asks for the list_files tool, the second answers with what the tool said.
type scriptedModel struct {
	mu       sync.Mutex
	requests []map[string]any
}

func (s *scriptedModel) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req map[string]any
	_ = json.NewDecoder(r.Body).Decode(&req)
	s.mu.Lock()
	s.requests = append(s.requests, req)
	n := len(s.requests)
	s.mu.Unlock()
	msgs := req["messages"].([]any)
	last := msgs[len(msgs)-1].(map[string]any)
	stream, _ := req["stream"].(bool)
	w.Header().Set("Content-Type", "application/json")
	if n == 1 {
		if stream {
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, `data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"list_files","arguments":""}}]}}]}`+"\n\n")
			fmt.Fprint(w, `data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"path\":\".\"}"}}]},"finish_reason":"tool_calls"}]}`+"\n\n")
			fmt.Fprint(w, "data: [DONE]\n\n")
			return
		}
		fmt.Fprint(w, `{"id":"c1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"list_files","arguments":"{\"path\":\".\"}"}}]},"finish_reason":"tool_calls"}]}`)
		return
	}
	answer := "Your workspace has: " + fmt.Sprint(last["content"])
	if stream {
		w.Header().Set("Content-Type", "text/event-stream")
		for _, part := range []string{"Your workspace has: ", fmt.Sprint(last["content"])} {
			b, _ := json.Marshal(map[string]any{"id": "c2", "object": "chat.completion.chunk", "model": "m",
				"choices": []any{map[string]any{"index": 0, "delta": map[string]any{"content": part}}}})
			fmt.Fprintf(w, "data: %s\n\n", b)
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
		return
	}
	b, _ := json.Marshal(map[string]any{"id": "c2", "object": "chat.completion", "model": "m",
		"choices": []any{map[string]any{"index": 0, "finish_reason": "stop", "message": map[string]any{"role": "assistant", "content": answer}}}})
	w.Write(b)
}

func mcpServer(t *testing.T) *httptest.Server {
	t.Helper()
	s := mcp.NewServer(&mcp.Implementation{Name: "test-tools", Version: "1"}, nil)
	type args struct {
		Path string `json:"path"`
	}
	mcp.AddTool(s, &mcp.Tool{Name: "list_files", Description: "List files"}, func(_ context.Context, _ *mcp.CallToolRequest, a args) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "notes.md, data.csv in " + a.Path}}}, nil, nil
	})
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	t.Cleanup(srv.Close)
	return srv
}

func TestOneShotToolLoop(t *testing.T) {
	t.Parallel()
	for _, noStream := range []bool{false, true} {
		t.Run(fmt.Sprintf("nostream=%v", noStream), func(t *testing.T) {
			t.Parallel()
			model := &scriptedModel{}
			llm := httptest.NewServer(model)
			defer llm.Close()
			tools := mcpServer(t)
			var out, progress bytes.Buffer
			err := Run(context.Background(), Options{
				BaseURL: llm.URL + "/v1", MCPURL: tools.URL, Model: "smart", Prompt: "What files are in my workspace?",
				Out: &out, Progress: &progress, NoStream: noStream,
			})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), "notes.md, data.csv in .") {
				t.Fatalf("answer = %q", out.String())
			}
			if !strings.Contains(progress.String(), "→ list_files") {
				t.Fatalf("progress = %q", progress.String())
			}
			if len(model.requests) != 2 || model.requests[0]["model"] != "smart" {
				t.Fatalf("requests = %v", model.requests)
			}
			tl := model.requests[0]["tools"].([]any)
			if fn := tl[0].(map[string]any)["function"].(map[string]any); fn["name"] != "list_files" {
				t.Fatalf("tools sent = %v", tl)
			}
		})
	}
}

func TestInteractiveKeepsHistoryAndSurvivesErrors(t *testing.T) {
	t.Parallel()
	calls := 0
	llm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		w.Header().Set("Content-Type", "application/json")
		var req map[string]any
		_ = json.NewDecoder(r.Body).Decode(&req)
		if calls == 1 {
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprint(w, `{"error":{"message":"budget exceeded","type":"rate_limit"}}`)
			return
		}
		n := len(req["messages"].([]any))
		fmt.Fprintf(w, `{"id":"x","object":"chat.completion","model":"m","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"history has %d messages"}}]}`, n)
	}))
	defer llm.Close()
	var out, progress bytes.Buffer
	err := Run(context.Background(), Options{BaseURL: llm.URL, In: strings.NewReader("hello\nagain\n/exit\n"), Out: &out, Progress: &progress, NoStream: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(progress.String(), "429") {
		t.Fatalf("the failed turn was not reported: %q", progress.String())
	}
	// system + hello + again (the failed turn's user message stays).
	if !strings.Contains(out.String(), "history has 3 messages") {
		t.Fatalf("out = %q", out.String())
	}
}

func TestNoEndpointIsAClearError(t *testing.T) {
	t.Parallel()
	err := Run(context.Background(), Options{Prompt: "hi"})
	if err == nil || !strings.Contains(err.Error(), "OPENAI_BASE_URL") {
		t.Fatalf("err = %v", err)
	}
}

func TestAttachmentsBecomeImagePartsAndDocumentText(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89")
	if err := os.WriteFile(dir+"/chart.png", png, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir+"/notes.txt", []byte("quarterly notes: revenue up"), 0o644); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	llm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewDecoder(r.Body).Decode(&got)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"id":"x","object":"chat.completion","model":"m","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"seen"}}]}`)
	}))
	defer llm.Close()
	var out bytes.Buffer
	err := Run(context.Background(), Options{BaseURL: llm.URL, Prompt: "describe", NoStream: true, Out: &out,
		Attachments: []string{dir + "/chart.png", dir + "/notes.txt"}})
	if err != nil {
		t.Fatal(err)
	}
	msgs := got["messages"].([]any)
	parts := msgs[len(msgs)-1].(map[string]any)["content"].([]any)
	if len(parts) != 3 {
		t.Fatalf("parts = %v", parts)
	}
	img := parts[1].(map[string]any)
	if img["type"] != "image_url" || !strings.HasPrefix(img["image_url"].(map[string]any)["url"].(string), "data:image/png;base64,") {
		t.Fatalf("image part = %v", img)
	}
	if txt := parts[2].(map[string]any)["text"].(string); !strings.Contains(txt, "quarterly notes") || !strings.Contains(txt, `name="notes.txt"`) {
		t.Fatalf("document part = %v", txt)
	}
	if err := Run(context.Background(), Options{BaseURL: llm.URL, Prompt: "x", Attachments: []string{dir + "/missing.pdf"}}); err == nil {
		t.Fatal("a missing attachment was accepted")
	}
}

// syncBuf is a buffer written by the chat and read by the test.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Ctrl-C in a chat (SIGINT, here sent on the channel) stops the answer
// being written and returns to the prompt; at the prompt it says how to
// leave; the chat goes on either way.
func TestInteractiveInterruptStopsTheTurnNotTheChat(t *testing.T) {
	t.Parallel()
	asked := make(chan struct{}, 1)
	llm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req map[string]any
		_ = json.NewDecoder(r.Body).Decode(&req)
		msgs := req["messages"].([]any)
		if last := msgs[len(msgs)-1].(map[string]any); last["content"] == "slow question" {
			asked <- struct{}{}
			<-r.Context().Done() // answers only when the client gives up
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"x","object":"chat.completion","model":"m","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"answered with %d messages"}}]}`, len(msgs))
	}))
	defer llm.Close()
	inR, inW := io.Pipe()
	ints := make(chan os.Signal, 1)
	var out, progress syncBuf
	done := make(chan error, 1)
	go func() {
		done <- Run(context.Background(), Options{BaseURL: llm.URL, In: inR, Out: &out, Progress: &progress, NoStream: true, Interrupts: ints})
	}()
	waitShown := func(b *syncBuf, want string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(b.String(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("never showed %q; out %q progress %q", want, out.String(), progress.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitShown(&out, "> ")
	ints <- os.Interrupt // at the prompt
	waitShown(&progress, "type /exit or press Ctrl-D to leave the chat")
	fmt.Fprintln(inW, "slow question")
	<-asked
	ints <- os.Interrupt // while the model is answering
	waitShown(&progress, "interrupted: the answer was stopped")
	fmt.Fprintln(inW, "next")
	// system + slow question (kept, as a failed turn's is) + next
	waitShown(&out, "answered with 3 messages")
	fmt.Fprintln(inW, "/exit")
	if err := <-done; err != nil {
		t.Fatalf("the chat ended with %v after interrupts", err)
	}
	if strings.Contains(progress.String(), "error:") {
		t.Errorf("an interrupted turn was reported as an error: %q", progress.String())
	}
}
