package agentapi

import (
	"context"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestAbuse_R9_UnknownToolsAndArgumentsAudited: a call to a tool nobody
// registered, refused by the MCP server before any handler runs, leaves
// an audit line with the sandbox, the name asked for (control characters
// kept for the JSON encoder to escape, length capped) and the arguments;
// a call with half a megabyte of arguments is audited with them cut to
// maxAuditArgs.
func TestAbuse_R9_UnknownToolsAndArgumentsAudited(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "alice", nil)
	s := connect(t, f.srv.URL, nil)
	ctx := context.Background()

	_, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "no_such_tool\x1b]52;c;x\x07", Arguments: map[string]any{"path": "/etc/shadow"}})
	if err == nil {
		t.Fatal("a call to an unknown tool succeeded")
	}
	ev := <-f.events
	if ev.Kind != "tool_call" || ev.Sandbox != "sb1" || ev.Agent != "assistant" || ev.Decision != "error" ||
		ev.Name != "no_such_tool\x1b]52;c;x\x07" || !strings.Contains(ev.Error, "unknown tool") || ev.Args != `{"path":"/etc/shadow"}` {
		t.Fatalf("unknown tool audited as %+v", ev)
	}

	long := strings.Repeat("n", 10000)
	if _, err := s.CallTool(ctx, &mcp.CallToolParams{Name: long}); err == nil {
		t.Fatal("a call to an unknown tool succeeded")
	}
	if ev := <-f.events; len(ev.Name) > maxAuditName+len("…") || !strings.HasPrefix(ev.Name, "nnn") {
		t.Fatalf("a 10,000-byte tool name audited as %d bytes", len(ev.Name))
	}

	big := strings.Repeat("a", 512<<10)
	res, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": big}})
	if err != nil || res.IsError {
		t.Fatalf("echo with 512 KiB of arguments: %v %+v", err, res)
	}
	ev = <-f.events
	if ev.Name != "echo" || ev.Decision != "ok" || len(ev.Args) > maxAuditArgs+len("…") || !strings.HasPrefix(ev.Args, `{"text":"aaa`) {
		t.Fatalf("512 KiB of arguments audited as %d bytes (%.40q), want at most %d", len(ev.Args), ev.Args, maxAuditArgs)
	}
	select {
	case ev := <-f.events:
		t.Fatalf("one more audit event than calls: %+v", ev)
	default:
	}
}
