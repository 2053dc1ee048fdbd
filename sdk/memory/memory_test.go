package memory_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/nemoclave/nemoclave/sdk/memory"
	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/status"
)

// call is what the recorder saw, whichever method ran.
type call struct {
	Scope    memory.Scope
	Text     string
	Metadata map[string]any
	Limit    int
	MinScore float64
	Token    string
	IDs      []string
	All      bool
}

// recorder is a memory plugin that records each call and answers as
// scripted.
type recorder struct {
	plugin.Base
	mem    memory.Memory
	scored []memory.Scored
	page   memory.Page
	n      int
	err    error

	mu  sync.Mutex
	got call
}

func (*recorder) Info() plugin.Info {
	return plugin.Info{Name: "recorder", Version: "0.0.1", Kinds: []plugin.Kind{plugin.KindMemory}}
}

func (r *recorder) record(c call) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = c
}

func (r *recorder) Remember(_ context.Context, s memory.Scope, text string, md map[string]any) (memory.Memory, error) {
	r.record(call{Scope: s, Text: text, Metadata: md})
	return r.mem, r.err
}
func (r *recorder) Recall(_ context.Context, s memory.Scope, q string, limit int, min float64) ([]memory.Scored, error) {
	r.record(call{Scope: s, Text: q, Limit: limit, MinScore: min})
	return r.scored, r.err
}
func (r *recorder) List(_ context.Context, s memory.Scope, limit int, tok string) (memory.Page, error) {
	r.record(call{Scope: s, Limit: limit, Token: tok})
	return r.page, r.err
}
func (r *recorder) Forget(_ context.Context, s memory.Scope, ids []string, all bool) (int, error) {
	r.record(call{Scope: s, IDs: ids, All: all})
	return r.n, r.err
}

var (
	scope   = memory.Scope{Agent: "assistant", User: "alice", Session: "s1"}
	created = time.Date(2026, 11, 26, 7, 0, 0, 123_000_000, time.UTC)
	stored  = memory.Memory{ID: "m1", Scope: scope, Text: "likes tea", CreatedAt: created,
		Metadata: map[string]any{"source": "chat", "weight": 0.5, "tags": []any{"drink", "pref"}, "nested": map[string]any{"ok": true}}}
)

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		rec      *recorder
		do       func(memory.Store) (any, error)
		wantCall call
		want     any
	}{
		{"remember", &recorder{mem: stored},
			func(s memory.Store) (any, error) {
				return s.Remember(ctx, scope, "likes tea", map[string]any{"n": 3, "tags": []string{"a", "b"}})
			},
			call{Scope: scope, Text: "likes tea", Metadata: map[string]any{"n": 3.0, "tags": []any{"a", "b"}}}, stored},
		{"remember without metadata or time", &recorder{mem: memory.Memory{ID: "m2"}},
			func(s memory.Store) (any, error) { return s.Remember(ctx, memory.Scope{}, "x", nil) },
			call{Text: "x"}, memory.Memory{ID: "m2"}},
		{"recall", &recorder{scored: []memory.Scored{{Memory: stored, Score: 0.9}, {Memory: memory.Memory{ID: "m3"}, Score: 0.2}}},
			func(s memory.Store) (any, error) { return s.Recall(ctx, scope, "tea?", 5, 0.1) },
			call{Scope: scope, Text: "tea?", Limit: 5, MinScore: 0.1},
			[]memory.Scored{{Memory: stored, Score: 0.9}, {Memory: memory.Memory{ID: "m3"}, Score: 0.2}}},
		{"list", &recorder{page: memory.Page{Memories: []memory.Memory{stored}, NextPageToken: "p2"}},
			func(s memory.Store) (any, error) { return s.List(ctx, scope, 1, "p1") },
			call{Scope: scope, Limit: 1, Token: "p1"}, memory.Page{Memories: []memory.Memory{stored}, NextPageToken: "p2"}},
		{"forget ids", &recorder{n: 2},
			func(s memory.Store) (any, error) { return s.Forget(ctx, scope, []string{"m1", "m2"}, false) },
			call{Scope: scope, IDs: []string{"m1", "m2"}}, 2},
		{"forget all", &recorder{n: 7},
			func(s memory.Store) (any, error) {
				return s.Forget(ctx, memory.Scope{Agent: "a", User: "u"}, nil, true)
			},
			call{Scope: memory.Scope{Agent: "a", User: "u"}, All: true}, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := tc.do(plugin.InProcess(t, tc.rec).Memory())
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.wantCall, tc.rec.got, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("call the plugin saw (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("result (-want +got):\n%s", d)
			}
		})
	}
}

func TestErrorsCrossTheWire(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := plugin.InProcess(t, &recorder{err: status.Errorf(status.InvalidArgument, "empty text")}).Memory()
	if _, err := s.Remember(ctx, scope, "", nil); status.CodeOf(err) != status.InvalidArgument {
		t.Errorf("Remember: %v", err)
	}
	if _, err := s.Remember(ctx, scope, "x", map[string]any{"bad": make(chan int)}); status.CodeOf(err) != status.InvalidArgument {
		t.Errorf("unencodable metadata: %v, want InvalidArgument", err)
	}
	bad := &recorder{mem: memory.Memory{ID: "x", Metadata: map[string]any{"f": func() {}}}}
	if _, err := plugin.InProcess(t, bad).Memory().Remember(ctx, scope, "x", nil); status.CodeOf(err) != status.Internal {
		t.Errorf("plugin returning unencodable metadata: %v, want Internal", err)
	}
	var ns memory.NotSupported
	if _, err := ns.Recall(ctx, scope, "", 0, 0); status.CodeOf(err) != status.NotSupported {
		t.Errorf("NotSupported.Recall: %v", err)
	}
}

func TestScopeRules(t *testing.T) {
	t.Parallel()
	user := memory.Scope{Agent: "a", User: "u"}
	s1 := memory.Scope{Agent: "a", User: "u", Session: "s1"}
	s2 := memory.Scope{Agent: "a", User: "u", Session: "s2"}
	other := memory.Scope{Agent: "a", User: "v"}
	otherAgent := memory.Scope{Agent: "b", User: "u"}
	for _, tc := range []struct {
		name        string
		reader, mem memory.Scope
		sees, owns  bool
	}{
		{"same session", s1, s1, true, true},
		{"session sees shared", s1, user, true, false},
		{"session does not see other session", s1, s2, false, false},
		{"user sees shared", user, user, true, true},
		{"user owns but does not see session memories", user, s1, false, true},
		{"other user", other, user, false, false},
		{"other agent", otherAgent, user, false, false},
	} {
		if got := tc.reader.Sees(tc.mem); got != tc.sees {
			t.Errorf("%s: Sees = %v, want %v", tc.name, got, tc.sees)
		}
		if got := tc.reader.Owns(tc.mem); got != tc.owns {
			t.Errorf("%s: Owns = %v, want %v", tc.name, got, tc.owns)
		}
	}
}
