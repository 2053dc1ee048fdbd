package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/nemoclave/nemoclave/blueprints"
	"github.com/nemoclave/nemoclave/gateway/inference"
	"github.com/nemoclave/nemoclave/internal/toolloop"
	"github.com/nemoclave/nemoclave/internal/wire/openai"
	"github.com/nemoclave/nemoclave/sdk/status"
	"github.com/nemoclave/nemoclave/sdk/tools"
)

// subagents serves the agent's declared subagents as tools
// (delegate_<name>). A delegation runs the subagent's own model alias and
// tools through the same sandbox's inference router, so it is metered,
// budgeted and logged like the agent's own calls.
type subagents struct {
	rn     *run
	routes inference.Routes
}

type delegateArgs struct {
	Task string `json:"task"`
}

const maxSubagentSteps = 6

func (s *subagents) ListTools(context.Context) ([]tools.Tool, error) {
	var out []tools.Tool
	for _, sa := range s.rn.agent.Subagents {
		desc := sa.Description
		if desc == "" {
			desc = "Delegate a task to the " + sa.Name + " subagent."
		}
		out = append(out, tools.Tool{
			Name:        "delegate_" + sa.Name,
			Description: desc + " It works on its own and returns its final answer.",
			InputSchema: json.RawMessage(`{"type":"object","properties":{"task":{"type":"string","description":"the task, self-contained"}},"required":["task"]}`),
		})
	}
	return out, nil
}

func (s *subagents) CallTool(ctx context.Context, req *tools.CallRequest) (*tools.CallResult, error) {
	name := strings.TrimPrefix(req.Name, "delegate_")
	var sa *blueprints.Subagent
	for _, c := range s.rn.agent.Subagents {
		if c.Name == name {
			sa = c
		}
	}
	if sa == nil {
		return nil, status.Errorf(status.NotFound, "no subagent %q", name)
	}
	var a delegateArgs
	if err := json.Unmarshal(req.Arguments, &a); err != nil || a.Task == "" {
		return tools.ErrorResult("delegate needs a non-empty task"), nil
	}
	model := sa.Model
	if model == "" {
		model = s.routes.Default
	}
	s.rn.log.Info("delegating to subagent", "agent", s.rn.agent.Name, "subagent", name, "model", model, "tools", sa.Tools)
	answer, err := s.delegate(ctx, sa, a.Task)
	if err != nil {
		s.rn.log.Warn("subagent failed", "subagent", name, "err", err.Error())
		return tools.ErrorResult("subagent " + name + " failed: " + err.Error()), nil
	}
	s.rn.log.Info("subagent answered", "subagent", name, "model", model, "answer_bytes", len(answer))
	return &tools.CallResult{Content: []tools.Content{tools.TextContent(answer)}}, nil
}

// inProcess sends the subagent's HTTP calls straight into the router.
type inProcess struct{ h http.Handler }

func (t inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, req)
	return rec.Result(), nil
}

func (s *subagents) delegate(ctx context.Context, sa *blueprints.Subagent, task string) (string, error) {
	model := sa.Model
	if model == "" {
		model = s.routes.Default
	}
	st := &subagentTools{byName: map[string]tools.Provider{}, call: tools.CallContext{Sandbox: s.rn.name, Agent: s.rn.agent.Name + "/" + sa.Name}}
	for _, addr := range sa.Tools {
		tp, err := s.rn.plugins.tools(addr)
		if err != nil {
			return "", err
		}
		list, err := tp.ListTools(ctx)
		if err != nil {
			return "", err
		}
		for _, t := range list {
			st.byName[t.Name] = tp
			params := t.InputSchema
			if len(params) == 0 || string(params) == "null" {
				params = json.RawMessage(`{"type":"object","properties":{}}`)
			}
			st.list = append(st.list, openai.Tool{Type: "function", Function: openai.Function{Name: t.Name, Description: t.Description, Parameters: params}})
		}
	}
	loop := &toolloop.Loop{
		Client: &toolloop.Client{BaseURL: "http://gateway/v1", HTTP: &http.Client{Transport: inProcess{s.rn.router}},
			Header: http.Header{"X-Nemoclave-Subagent": {sa.Name}}},
		Model: model, Tools: st, MaxSteps: maxSubagentSteps,
	}
	_, answer, err := loop.Turn(ctx, []openai.Message{
		toolloop.SystemMessage("You are the " + sa.Name + " subagent. Complete the task and reply with the result only."),
		toolloop.UserMessage(task),
	})
	return answer, err
}

// subagentTools offers a subagent the tool plugins the blueprint gave it.
type subagentTools struct {
	list   []openai.Tool
	byName map[string]tools.Provider
	call   tools.CallContext
}

func (t *subagentTools) List(context.Context) []openai.Tool { return t.list }

func (t *subagentTools) Call(ctx context.Context, name string, args json.RawMessage) (string, error) {
	tp := t.byName[name]
	if tp == nil {
		return "", fmt.Errorf("unknown tool %q", name)
	}
	res, err := tp.CallTool(ctx, &tools.CallRequest{Name: name, Arguments: args, Context: t.call})
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, c := range res.Content {
		b.WriteString(c.Text)
	}
	return b.String(), nil
}
