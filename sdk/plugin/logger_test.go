package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/nemoclave/nemoclave/sdk/internal/callctx"
)

// TestLoggerTagsTheCallersSandbox: a call's logger carries the sandbox
// the call names, so the host routes its lines to that sandbox alone;
// outside a call the logger is untagged.
func TestLoggerTagsTheCallersSandbox(t *testing.T) {
	var buf bytes.Buffer
	l := hclog.New(&hclog.LoggerOptions{Output: &buf, JSONFormat: true})
	old := servedLogger.Swap(&l)
	defer servedLogger.Store(old)

	Logger(callctx.WithSandbox(context.Background(), "alpha")).Info("call")
	Logger(context.Background()).Info("background")
	var lines []map[string]any
	dec := json.NewDecoder(&buf)
	for dec.More() {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 2 || lines[0]["sandbox"] != "alpha" || lines[0]["@message"] != "call" {
		t.Fatalf("lines %v: want the call's line tagged sandbox=alpha", lines)
	}
	if _, ok := lines[1]["sandbox"]; ok {
		t.Errorf("the background line names a sandbox: %v", lines[1])
	}
}
