package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sync/atomic"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/nemoclave/nemoclave/sandbox/local"
)

// serverEnv makes the test binary run testServer on stdio instead of the
// tests: a real MCP server process whose tool list the tests can change.
const serverEnv = "NEMOCLAVE_TOOLS_MCP_TEST_SERVER"

func TestMain(m *testing.M) {
	local.MaybeInit()
	if os.Getenv(serverEnv) == "1" {
		if err := testServer().Run(context.Background(), &mcp.StdioTransport{}); err != nil {
			fmt.Fprintln(os.Stderr, "test server:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if os.Getenv(confinedPluginEnv) == "1" {
		confineAndServe()
		return
	}
	os.Exit(m.Run())
}

type addIn struct {
	A int `json:"a" jsonschema:"first addend"`
	B int `json:"b" jsonschema:"second addend"`
}

type addOut struct {
	Sum int `json:"sum"`
}

// testServer offers:
//   - add(a, b): text and structured output;
//   - grow(): adds a tool extra_<n>, which makes the server announce
//     notifications/tools/list_changed;
//   - fail(): a tool-level error;
//   - env(): the value of MCP_TEST_VAR in the server's environment;
//   - confinement(): the server's NoNewPrivs and Seccomp status and the
//     outcome of creating MCP_TEST_MKDIR, to show what it inherited;
//   - crash(): the server process exits.
func testServer() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "nemoclave-test-server", Version: "1.0.0"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "add", Description: "Add two integers.", Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}},
		func(_ context.Context, _ *mcp.CallToolRequest, in addIn) (*mcp.CallToolResult, addOut, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: fmt.Sprint(in.A + in.B)}}}, addOut{Sum: in.A + in.B}, nil
		})
	var grown atomic.Int32
	mcp.AddTool(s, &mcp.Tool{Name: "grow", Description: "Add a new tool."},
		func(_ context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			name := fmt.Sprintf("extra_%d", grown.Add(1))
			mcp.AddTool(s, &mcp.Tool{Name: name, Description: "Added at run time."},
				func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
					return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: name}}}, nil, nil
				})
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "added " + name}}}, nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "fail", Description: "Always fails."},
		func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: "it failed, as asked"}}}, nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "env", Description: "Report MCP_TEST_VAR."},
		func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: os.Getenv("MCP_TEST_VAR")}}}, nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "confinement", Description: "Report the server's own confinement."},
		func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: confinementReport()}}}, nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "crash", Description: "Exit the server."},
		func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
			os.Exit(3)
			return nil, nil, nil
		})
	return s
}

// httpServer serves testServer over streamable HTTP, one server per
// session as a real deployment would.
func httpServer() http.Handler {
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return testServer() }, nil)
}
