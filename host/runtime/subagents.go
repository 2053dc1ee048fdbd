package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"

	"github.com/nemoclave/nemoclave/blueprints"
	"github.com/nemoclave/nemoclave/gateway/inference"
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
	client := openai.NewClient(option.WithBaseURL("http://gateway/v1"), option.WithAPIKey("subagent"),
		option.WithHTTPClient(&http.Client{Transport: inProcess{s.rn.router}}), option.WithMaxRetries(0),
		option.WithHeader("X-Nemoclave-Subagent", sa.Name))
	provs := map[string]tools.Provider{}
	var toolParams []openai.ChatCompletionToolUnionParam
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
			provs[t.Name] = tp
			var params shared.FunctionParameters
			if json.Unmarshal(t.InputSchema, &params) != nil || params == nil {
				params = shared.FunctionParameters{"type": "object", "properties": map[string]any{}}
			}
			toolParams = append(toolParams, openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
				Name: t.Name, Description: openai.String(t.Description), Parameters: params}))
		}
	}
	msgs := []openai.ChatCompletionMessageParamUnion{
		openai.SystemMessage("You are the " + sa.Name + " subagent. Complete the task and reply with the result only."),
		openai.UserMessage(task),
	}
	for step := 0; step < maxSubagentSteps; step++ {
		resp, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: model, Messages: msgs, Tools: toolParams})
		if err != nil {
			return "", err
		}
		if len(resp.Choices) == 0 {
			return "", fmt.Errorf("model %s returned no choices", model)
		}
		msg := resp.Choices[0].Message
		msgs = append(msgs, msg.ToParam())
		if len(msg.ToolCalls) == 0 {
			return msg.Content, nil
		}
		for _, call := range msg.ToolCalls {
			tp := provs[call.Function.Name]
			out := `{"error":"unknown tool"}`
			if tp != nil {
				res, err := tp.CallTool(ctx, &tools.CallRequest{Name: call.Function.Name, Arguments: json.RawMessage(call.Function.Arguments),
					Context: tools.CallContext{Sandbox: s.rn.name, Agent: s.rn.agent.Name + "/" + sa.Name}})
				if err != nil {
					out = fmt.Sprintf(`{"error":%q}`, err.Error())
				} else {
					var b strings.Builder
					for _, c := range res.Content {
						b.WriteString(c.Text)
					}
					out = b.String()
				}
			}
			msgs = append(msgs, openai.ToolMessage(out, call.ID))
		}
	}
	return "", fmt.Errorf("the subagent made %d model calls without finishing", maxSubagentSteps)
}
