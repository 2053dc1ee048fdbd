package sdktest

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/status"
	"github.com/nemoclave/nemoclave/sdk/tools"
)

// Tools checks the Provider contract: tools have unique names and object
// input schemas (with properties an object and required naming declared
// properties); an unknown tool is NotFound; each WithToolSample call
// succeeds with content; and WatchTools either delivers the current list
// first and stops on cancel (a Watcher) or answers NotSupported.
func Tools(t *testing.T, p plugin.Plugin, opts ...Option) {
	t.Helper()
	o := collect(opts)
	ctx := suiteContext(t, o)
	c, _ := start(t, p, o)
	prov := c.Tools()

	list, err := prov.ListTools(ctx)
	if err != nil {
		t.Fatalf("ListTools: %v", err)
	}
	if len(list) == 0 {
		t.Fatal("ListTools returned no tools")
	}
	byName := map[string]tools.Tool{}
	t.Run("schemas", func(t *testing.T) {
		for _, tl := range list {
			if tl.Name == "" {
				t.Errorf("a tool has no name: %+v", tl)
			}
			if _, dup := byName[tl.Name]; dup {
				t.Errorf("tool %q listed twice", tl.Name)
			}
			byName[tl.Name] = tl
			if tl.Description == "" {
				t.Errorf("tool %q has no description; the model chooses tools by it", tl.Name)
			}
			if err := checkObjectSchema(tl.InputSchema); err != nil {
				t.Errorf("tool %q input schema: %v", tl.Name, err)
			}
			if len(tl.OutputSchema) > 0 {
				if err := checkObjectSchema(tl.OutputSchema); err != nil {
					t.Errorf("tool %q output schema: %v", tl.Name, err)
				}
			}
			if tl.ReadOnly && tl.Destructive {
				t.Errorf("tool %q is marked both read-only and destructive", tl.Name)
			}
		}
	})

	t.Run("unknown tool", func(t *testing.T) {
		_, err := prov.CallTool(ctx, &tools.CallRequest{Name: "sdktest-no-such-tool", Arguments: json.RawMessage(`{}`)})
		if status.CodeOf(err) != status.NotFound {
			t.Errorf("calling an unknown tool: %v, want a status.NotFound error", err)
		}
	})

	t.Run("samples", func(t *testing.T) {
		called := map[string]bool{}
		for _, s := range o.toolSamples {
			tl, ok := byName[s.name]
			if !ok {
				t.Errorf("WithToolSample(%q): no such tool", s.name)
				continue
			}
			called[s.name] = true
			res, err := prov.CallTool(ctx, &tools.CallRequest{Name: s.name, Arguments: s.args,
				Context: tools.CallContext{Sandbox: "sdktest", Agent: "sdktest", Session: "sdktest"}})
			if err != nil {
				t.Errorf("CallTool(%s, %s): %v", s.name, s.args, err)
				continue
			}
			if res.IsError {
				t.Errorf("CallTool(%s, %s) reported a tool error: %+v", s.name, s.args, res.Content)
			}
			if len(res.Content) == 0 && len(res.Structured) == 0 {
				t.Errorf("CallTool(%s) returned neither content nor structured output", s.name)
			}
			if len(res.Structured) > 0 && !json.Valid(res.Structured) {
				t.Errorf("CallTool(%s) structured output is not JSON: %s", s.name, res.Structured)
			}
			if len(res.Structured) > 0 && len(tl.OutputSchema) == 0 {
				t.Logf("tool %s returns structured output without declaring an OutputSchema", s.name)
			}
		}
		for name := range byName {
			if !called[name] {
				t.Logf("tool %s was not called: give it arguments with sdktest.WithToolSample", name)
			}
		}
	})

	t.Run("watch", func(t *testing.T) {
		w := prov.(tools.Watcher)
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		first := make(chan []tools.Tool, 1)
		done := make(chan error, 1)
		go func() {
			done <- w.WatchTools(wctx, func(ts []tools.Tool) {
				select {
				case first <- ts:
				default:
				}
			})
		}()
		_, isWatcher := p.(tools.Watcher)
		if o.binary != nil {
			// A binary's implementation is unknown: either answer
			// conforms, a first list or NotSupported.
			select {
			case ts := <-first:
				isWatcher = true
				first <- ts
			case err := <-done:
				if status.CodeOf(err) != status.NotSupported {
					t.Fatalf("WatchTools: %v; deliver the current list first, or answer NotSupported (UNIMPLEMENTED)", err)
				}
				return
			case <-time.After(10 * time.Second):
				t.Fatal("WatchTools neither delivered the current list nor answered NotSupported within 10s")
			}
		}
		if !isWatcher {
			select {
			case err := <-done:
				if status.CodeOf(err) != status.NotSupported {
					t.Errorf("WatchTools on a plugin that does not implement tools.Watcher: %v, want NotSupported", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("WatchTools did not answer NotSupported within 10s")
			}
			return
		}
		select {
		case ts := <-first:
			if len(ts) != len(list) {
				t.Errorf("WatchTools first delivered %d tools, ListTools %d; deliver the current list first", len(ts), len(list))
			}
		case err := <-done:
			t.Fatalf("WatchTools returned before delivering the current list: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatal("WatchTools did not deliver the current list within 10s")
		}
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) && status.CodeOf(err) != status.Canceled {
				t.Errorf("WatchTools after cancel: %v, want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("WatchTools did not return within 10s of cancellation")
		}
	})
}

// checkObjectSchema checks what the host and models rely on, not the
// whole JSON Schema specification: an object schema whose properties is
// an object of schemas and whose required names declared properties.
func checkObjectSchema(raw json.RawMessage) error {
	if len(raw) == 0 {
		return errors.New(`missing; use at least {"type":"object"}`)
	}
	var s struct {
		Type       any                        `json:"type"`
		Properties map[string]json.RawMessage `json:"properties"`
		Required   []string                   `json:"required"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return errors.New("not a JSON object schema: " + err.Error())
	}
	if s.Type != "object" {
		return errors.New(`"type" must be "object": tool arguments are a JSON object`)
	}
	for name, p := range s.Properties {
		var obj map[string]any
		if err := json.Unmarshal(p, &obj); err != nil {
			return errors.New("property " + name + " is not a schema object")
		}
	}
	for _, r := range s.Required {
		if _, ok := s.Properties[r]; !ok {
			return errors.New("required property " + r + " is not declared in properties")
		}
	}
	return nil
}
