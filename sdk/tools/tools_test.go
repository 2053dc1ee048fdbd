package tools_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/status"
	"github.com/nemoclave/nemoclave/sdk/tools"
)

// recorder is a tools plugin that records the call it received and
// answers as scripted.
type recorder struct {
	plugin.Base
	list []tools.Tool
	res  *tools.CallResult
	err  error

	mu  sync.Mutex
	got *tools.CallRequest
}

func (*recorder) Info() plugin.Info {
	return plugin.Info{Name: "recorder", Version: "0.0.1", Kinds: []plugin.Kind{plugin.KindTools}}
}
func (r *recorder) ListTools(context.Context) ([]tools.Tool, error) { return r.list, r.err }
func (r *recorder) CallTool(_ context.Context, req *tools.CallRequest) (*tools.CallResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = req
	return r.res, r.err
}

// watcher adds WatchTools: it sends the list, then one change per tick
// from changes, until ctx is done.
type watcher struct {
	*recorder
	changes chan []tools.Tool
	stopped chan error
}

func (w *watcher) WatchTools(ctx context.Context, fn func([]tools.Tool)) error {
	fn(w.list)
	for {
		select {
		case ts := <-w.changes:
			fn(ts)
		case <-ctx.Done():
			w.stopped <- ctx.Err()
			return ctx.Err()
		}
	}
}

var sampleTools = []tools.Tool{
	{Name: "read", Description: "read a file", InputSchema: json.RawMessage(`{"type":"object","properties":{"path":{"type":"string"}}}`), ReadOnly: true},
	{Name: "rm", InputSchema: json.RawMessage(`{"type":"object"}`), OutputSchema: json.RawMessage(`{"type":"object","properties":{"removed":{"type":"integer"}}}`), Destructive: true},
}

func TestCallToolRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		req  *tools.CallRequest
		res  *tools.CallResult
	}{
		{"minimal", &tools.CallRequest{Name: "read"}, &tools.CallResult{}},
		{"text", &tools.CallRequest{Name: "read", Arguments: json.RawMessage(`{"path":"/a"}`), Context: tools.CallContext{Sandbox: "sb", Agent: "ag", Session: "se"}},
			&tools.CallResult{Content: []tools.Content{tools.TextContent("hello"), tools.TextContent("")}}},
		{"blobs and structured", &tools.CallRequest{Name: "rm", Arguments: json.RawMessage(`{}`)}, &tools.CallResult{
			Content: []tools.Content{
				{Image: &tools.Blob{MIMEType: "image/png", Data: []byte{1, 2, 3}}},
				{Resource: &tools.Blob{MIMEType: "text/csv", URI: "file:///workspace/out.csv", Name: "out.csv"}},
			},
			Structured: json.RawMessage(`{"removed":2}`),
		}},
		{"tool error", &tools.CallRequest{Name: "read", Arguments: json.RawMessage(`{"path":"/nope"}`)}, tools.ErrorResult("no such file: /nope")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := &recorder{res: tc.res}
			p := plugin.InProcess(t, rec).Tools()
			got, err := p.CallTool(context.Background(), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.req, rec.got, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("request (-sent +received):\n%s", d)
			}
			if d := cmp.Diff(tc.res, got, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("result (-sent +received):\n%s", d)
			}
		})
	}
}

func TestListToolsAndErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	got, err := plugin.InProcess(t, &recorder{list: sampleTools}).Tools().ListTools(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(sampleTools, got, cmpopts.EquateEmpty()); d != "" {
		t.Errorf("tools (-sent +received):\n%s", d)
	}
	p := plugin.InProcess(t, &recorder{err: status.Errorf(status.NotFound, "no tool %q", "x")}).Tools()
	if _, err := p.CallTool(ctx, &tools.CallRequest{Name: "x"}); status.CodeOf(err) != status.NotFound {
		t.Errorf("CallTool error %v, want NotFound", err)
	}
	if _, err := plugin.InProcess(t, &recorder{}).Tools().CallTool(ctx, &tools.CallRequest{Name: "x"}); status.CodeOf(err) != status.Internal {
		t.Errorf("nil result without error: %v, want Internal", err)
	}
}

func TestWatchToolsNotSupportedWithoutWatcher(t *testing.T) {
	t.Parallel()
	p := plugin.InProcess(t, &recorder{list: sampleTools}).Tools()
	w, ok := p.(tools.Watcher)
	if !ok {
		t.Fatal("the client does not implement Watcher")
	}
	err := w.WatchTools(context.Background(), func([]tools.Tool) { t.Error("fn called without a Watcher") })
	if status.CodeOf(err) != status.NotSupported {
		t.Fatalf("WatchTools = %v (code %v), want NotSupported", err, status.CodeOf(err))
	}
}

func TestWatchToolsPropagatesChangesAndCancels(t *testing.T) {
	t.Parallel()
	wp := &watcher{recorder: &recorder{list: sampleTools[:1]}, changes: make(chan []tools.Tool), stopped: make(chan error, 1)}
	p := plugin.InProcess(t, wp).Tools().(tools.Watcher)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seen := make(chan []tools.Tool)
	done := make(chan error, 1)
	go func() { done <- p.WatchTools(ctx, func(ts []tools.Tool) { seen <- ts }) }()

	for i, want := range [][]tools.Tool{sampleTools[:1], sampleTools, nil} {
		if i > 0 {
			wp.changes <- want
		}
		select {
		case got := <-seen:
			if d := cmp.Diff(want, got, cmpopts.EquateEmpty()); d != "" {
				t.Fatalf("update %d (-want +got):\n%s", i, d)
			}
		case <-time.After(time.Minute):
			t.Fatalf("update %d never arrived", i)
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("WatchTools after cancel = %v, want context.Canceled", err)
	}
	select {
	case <-wp.stopped:
	case <-time.After(time.Minute):
		t.Fatal("the plugin's WatchTools kept running after the client cancelled")
	}
}
