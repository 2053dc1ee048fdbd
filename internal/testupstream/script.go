package testupstream

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"

	"github.com/nemoclave/nemoclave/sdk/llm"
)

// Script makes the stand-in play the model for one agent task, the way the
// agent tests need it: real agents offer dozens of tools with their own
// argument schemas, so the generic "call the first tool" answer would not
// run anything. With a script, a request that offers one of Calls' tools
// (by exact name, first match wins) and holds no tool result yet is
// answered with that call; once the conversation holds a tool result the
// answer is Final. Requests offering none of the tools (title generation,
// quota probes) get the default answers.
type Script struct {
	Calls []ScriptCall `json:"calls"`
	Final string       `json:"final"`
}

// ScriptCall is one tool call the script may make: the tool's name and the
// JSON arguments to call it with.
type ScriptCall struct {
	Tool      string          `json:"tool"`
	Arguments json.RawMessage `json:"arguments"`
}

// LoadScript reads a Script from a JSON file.
func LoadScript(path string) (*Script, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s Script
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("script %s: %w", path, err)
	}
	if len(s.Calls) == 0 || s.Final == "" {
		return nil, fmt.Errorf("script %s: needs at least one call and a final answer", path)
	}
	return &s, nil
}

// scripted answers req from the script; ok is false when the script has
// nothing to say about it (none of its tools is offered).
func (s *Script) scripted(req *llm.ChatRequest) (resp *llm.ChatResponse, ok bool) {
	resp = &llm.ChatResponse{ID: "resp-script-1", Model: req.Model, Message: llm.Message{Role: llm.RoleAssistant}, FinishReason: llm.FinishStop}
	// Any tool result means the call was made and answered: the agent
	// tests are one task each, and agents may add their own user turns
	// (reminders) after a tool result.
	if slices.ContainsFunc(req.Messages, func(m llm.Message) bool { return m.Role == llm.RoleTool }) {
		resp.Message.Content = []llm.ContentPart{llm.Text(s.Final)}
		return resp, true
	}
	for _, c := range s.Calls {
		if slices.ContainsFunc(req.Tools, func(t llm.Tool) bool { return t.Name == c.Tool }) {
			resp.Message.ToolCalls = []llm.ToolCall{{ID: "call_script_1", Name: c.Tool, Arguments: string(c.Arguments)}}
			resp.FinishReason = llm.FinishToolCalls
			return resp, true
		}
	}
	return nil, false
}

// Seen is what the stand-in noted about one model request (GET /_requests):
// enough for a test to check what an agent's calls looked like once they
// had crossed the gateway, without the agents' very large prompts.
type Seen struct {
	Path       string   `json:"path"`
	Model      string   `json:"model"`
	Stream     bool     `json:"stream"`
	Tools      []string `json:"tools,omitempty"`
	ToolResult bool     `json:"tool_result"`
	// ToolOutput is the last tool result's text (at most 2000 bytes), to
	// see what an agent's tool reported.
	ToolOutput string `json:"tool_output,omitempty"`
	// Authorised is whether the request carried the stand-in's key.
	Authorised bool `json:"authorised"`
	// Answer is what the stand-in answered: "tool:<name>", "text" or
	// "error:<status>".
	Answer string `json:"answer"`
}
