package agentapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/nemoclave/nemoclave/sdk/memory"
	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/status"
	"github.com/nemoclave/nemoclave/sdk/tools"
)

// echoTools is a tools plugin served over real gRPC by plugin.InProcess.
type echoTools struct {
	plugin.Base
	mu      sync.Mutex
	extra   bool
	changed chan struct{}
	seen    []tools.CallContext
}

func (*echoTools) Info() plugin.Info {
	return plugin.Info{Name: "echo", Version: "1", Kinds: []plugin.Kind{plugin.KindTools}}
}

func (e *echoTools) ListTools(context.Context) ([]tools.Tool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	list := []tools.Tool{{Name: "echo", Description: "Echo the text", InputSchema: json.RawMessage(`{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}`)}}
	if e.extra {
		list = append(list, tools.Tool{Name: "late", Description: "Added later"})
	}
	return list, nil
}

func (e *echoTools) CallTool(_ context.Context, req *tools.CallRequest) (*tools.CallResult, error) {
	e.mu.Lock()
	e.seen = append(e.seen, req.Context)
	e.mu.Unlock()
	var a struct{ Text string }
	_ = json.Unmarshal(req.Arguments, &a)
	if a.Text == "fail" {
		return nil, status.Errorf(status.Unavailable, "upstream down")
	}
	return &tools.CallResult{Content: []tools.Content{tools.TextContent("echo: " + a.Text)}}, nil
}

func (e *echoTools) WatchTools(ctx context.Context, fn func([]tools.Tool)) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-e.changed:
			list, _ := e.ListTools(ctx)
			fn(list)
		}
	}
}

// memStore is a small in-memory memory.Store honouring Scope.Sees/Owns.
type memStore struct {
	mu   sync.Mutex
	n    int
	mems []memory.Memory
}

func (m *memStore) Remember(_ context.Context, s memory.Scope, text string, md map[string]any) (memory.Memory, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.n++
	mem := memory.Memory{ID: fmt.Sprint(m.n), Scope: s, Text: text, Metadata: md, CreatedAt: time.Now()}
	m.mems = append(m.mems, mem)
	return mem, nil
}

func (m *memStore) Recall(_ context.Context, s memory.Scope, q string, _ int, _ float64) ([]memory.Scored, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []memory.Scored
	for _, mem := range m.mems {
		if s.Sees(mem.Scope) && strings.Contains(mem.Text, q) {
			out = append(out, memory.Scored{Memory: mem, Score: 1})
		}
	}
	return out, nil
}

func (m *memStore) List(_ context.Context, s memory.Scope, _ int, _ string) (memory.Page, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var p memory.Page
	for _, mem := range m.mems {
		if s.Sees(mem.Scope) {
			p.Memories = append(p.Memories, mem)
		}
	}
	return p, nil
}

func (m *memStore) Forget(_ context.Context, s memory.Scope, ids []string, _ bool) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	keep := m.mems[:0]
	for _, mem := range m.mems {
		drop := false
		for _, id := range ids {
			if id == mem.ID && s.Owns(mem.Scope) {
				drop = true
			}
		}
		if drop {
			n++
		} else {
			keep = append(keep, mem)
		}
	}
	m.mems = keep
	return n, nil
}

type fixture struct {
	srv    *httptest.Server
	plugin *echoTools
	events chan Event
}

func newFixture(t *testing.T, user string, store memory.Store) *fixture {
	t.Helper()
	p := &echoTools{changed: make(chan struct{}, 1)}
	client := plugin.InProcess(t, p)
	events := make(chan Event, 100)
	h, err := New(context.Background(), Config{
		Identity: Identity{Sandbox: "sb1", Agent: "assistant", User: user},
		Tools:    []ToolSource{{Name: "echo", Provider: client.Tools()}, {Name: "local", Provider: p}},
		Memory:   store,
		Audit:    func(e Event) { events <- e },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return &fixture{srv: newServerURL(t, h), plugin: p, events: events}
}

func newServerURL(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func newServer(t *testing.T, h http.Handler) string { return newServerURL(t, h).URL }

func connect(t *testing.T, url string, onChange func()) *mcp.ClientSession {
	t.Helper()
	c := mcp.NewClient(&mcp.Implementation{Name: "t", Version: "1"}, &mcp.ClientOptions{
		ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) {
			if onChange != nil {
				onChange()
			}
		},
	})
	s, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: url + "/mcp"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func toolNames(t *testing.T, s *mcp.ClientSession) []string {
	t.Helper()
	res, err := s.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range res.Tools {
		names = append(names, tl.Name)
	}
	return names
}

func TestMCPToolsFromPluginsAndBuiltins(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "alice", &memStore{})
	s := connect(t, f.srv.URL, nil)
	got := strings.Join(toolNames(t, s), ",")
	// The second source's clashing "echo" is prefixed with its name.
	for _, want := range []string{"echo", "local_echo", "memory_recall", "memory_remember", "memory_forget"} {
		if !strings.Contains(","+got+",", ","+want+",") {
			t.Fatalf("tools = %s, missing %s", got, want)
		}
	}
	res, err := s.CallTool(context.Background(), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hi"}})
	if err != nil || res.IsError || res.Content[0].(*mcp.TextContent).Text != "echo: hi" {
		t.Fatalf("call: %v %+v", err, res)
	}
	ev := <-f.events
	if ev.Kind != "tool_call" || ev.Name != "echo" || ev.Decision != "ok" || ev.Sandbox != "sb1" {
		t.Fatalf("audit event = %+v", ev)
	}
	// R9: the call's arguments are in the record.
	if ev.Args != `{"text":"hi"}` {
		t.Errorf("audited args = %q", ev.Args)
	}
	f.plugin.mu.Lock()
	seen := f.plugin.seen
	f.plugin.mu.Unlock()
	if len(seen) != 1 || seen[0].Sandbox != "sb1" || seen[0].Agent != "assistant" {
		t.Fatalf("plugin saw call context %+v", seen)
	}
	res, err = s.CallTool(context.Background(), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "fail"}})
	if err != nil || !res.IsError || !strings.Contains(res.Content[0].(*mcp.TextContent).Text, "upstream down") {
		t.Fatalf("failing call should be a readable tool error: %v %+v", err, res)
	}
	if ev := <-f.events; ev.Decision != "error" {
		t.Fatalf("failed call audited as %+v", ev)
	}
}

func TestMCPToolListChangesPropagate(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "alice", nil)
	changed := make(chan struct{}, 10)
	s := connect(t, f.srv.URL, func() { changed <- struct{}{} })
	if got := toolNames(t, s); strings.Contains(strings.Join(got, ","), "late") {
		t.Fatalf("late tool present too early: %v", got)
	}
	f.plugin.mu.Lock()
	f.plugin.extra = true
	f.plugin.mu.Unlock()
	f.plugin.changed <- struct{}{}
	select {
	case <-changed:
	case <-time.After(time.Minute):
		t.Fatal("no tools/list_changed notification")
	}
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(strings.Join(toolNames(t, s), ","), "late") {
		if time.Now().After(deadline) {
			t.Fatalf("tool list never gained the new tool: %v", toolNames(t, s))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func post(t *testing.T, url string, body any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestMemoryRESTIsScopedByListener(t *testing.T) {
	t.Parallel()
	store := &memStore{}
	alice := newFixture(t, "alice", store)
	bob := newFixture(t, "bob", store)
	code, out := post(t, alice.srv.URL+"/v1/memory", map[string]any{"text": "alice likes tea"})
	if code != http.StatusCreated || out["id"] == "" {
		t.Fatalf("remember: %d %v", code, out)
	}
	id := out["id"].(string)
	code, out = post(t, alice.srv.URL+"/v1/memory/recall", map[string]any{"query": "tea"})
	if code != 200 || len(out["memories"].([]any)) != 1 {
		t.Fatalf("alice recall: %d %v", code, out)
	}
	_, out = post(t, bob.srv.URL+"/v1/memory/recall", map[string]any{"query": "tea"})
	if n := len(out["memories"].([]any)); n != 0 {
		t.Fatalf("bob sees alice's memory: %v", out)
	}
	// Bob cannot forget Alice's memory by id.
	_, out = post(t, bob.srv.URL+"/v1/memory/forget", map[string]any{"ids": []string{id}})
	if out["forgotten"] != float64(0) {
		t.Fatalf("bob forgot alice's memory: %v", out)
	}
	code, out = post(t, alice.srv.URL+"/v1/memory", map[string]any{"text": "x", "agent": "someone-else"})
	if code != http.StatusBadRequest {
		t.Fatalf("unknown field (an attempt to pick a scope) accepted: %d %v", code, out)
	}
}

func TestMissingStoreSaysHowToFix(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "alice", nil)
	code, out := post(t, f.srv.URL+"/v1/memory", map[string]any{"text": "x"})
	msg, _ := out["error"].(map[string]any)["message"].(string)
	if code != http.StatusNotImplemented || !strings.Contains(msg, "memory = plugin.memory") {
		t.Fatalf("%d %v", code, out)
	}
	code, _ = post(t, f.srv.URL+"/v1/retrieval/collections/docs/query", map[string]any{"text": "x"})
	if code != http.StatusNotImplemented {
		t.Fatalf("retrieval without a store: %d", code)
	}
}

func TestMemoryToolsOverMCP(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "alice", &memStore{})
	s := connect(t, f.srv.URL, nil)
	ctx := context.Background()
	if res, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "memory_remember", Arguments: map[string]any{"text": "the deploy key rotates on Mondays"}}); err != nil || res.IsError {
		t.Fatalf("remember: %v %+v", err, res)
	}
	res, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "memory_recall", Arguments: map[string]any{"query": "deploy"}})
	if err != nil || !strings.Contains(res.Content[0].(*mcp.TextContent).Text, "rotates on Mondays") {
		t.Fatalf("recall: %v %+v", err, res)
	}
}
