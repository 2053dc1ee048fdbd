package blueprints

import (
	"github.com/hashicorp/hcl/v2"
)

// Agent is one agent block: what runs in which sandbox, with which
// capabilities. Plugin references are by name within their kind.
type Agent struct {
	Name    string   `json:"name"`
	Sandbox string   `json:"sandbox"`
	Command []string `json:"command"`
	// Model is the inference alias the agent uses by default; empty when
	// the blueprint has no inference block.
	Model string `json:"model,omitempty"`
	// Tools are tools plugin names (plugin.tools.<name>).
	Tools []string `json:"tools,omitempty"`
	// Memory and Retrieval are plugin names of those kinds, or empty.
	Memory    string      `json:"memory,omitempty"`
	Retrieval string      `json:"retrieval,omitempty"`
	Subagents []*Subagent `json:"subagents,omitempty"`
	DeclRange hcl.Range   `json:"-"`
	// SandboxRange is the sandbox attribute's value.
	SandboxRange hcl.Range `json:"-"`
}

// Subagent is a role the agent can delegate to, with its own model and
// capabilities (never more than the sandbox's policy allows).
type Subagent struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Model       string   `json:"model,omitempty"`
	Tools       []string `json:"tools,omitempty"`
	Memory      string   `json:"memory,omitempty"`
	Retrieval   string   `json:"retrieval,omitempty"`
}

var agentSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "sandbox", Required: true}, {Name: "command", Required: true},
		{Name: "model"}, {Name: "tools"}, {Name: "memory"}, {Name: "retrieval"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "subagent", LabelNames: []string{"name"}}},
}

var subagentSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "description"}, {Name: "model"}, {Name: "tools"}, {Name: "memory"}, {Name: "retrieval"},
}}

func (e *evaluator) decodeAgents(bp *Blueprint) []*Agent {
	out := []*Agent{}
	// One agent per sandbox: the sandbox is the agent's process tree,
	// listeners and workspace, and the runtime starts one agent in each.
	users := map[string]*Agent{}
	for _, name := range sortedKeys(e.decl.agents) {
		a := e.decodeAgent(e.decl.agents[name], bp)
		if a == nil {
			continue
		}
		if prev, ok := users[a.Sandbox]; ok && a.Sandbox != "" {
			e.errorf(a.SandboxRange.Ptr(), "Sandbox already used by another agent", "agents %q and %q both use sandbox %q (%q at %s). Each agent runs in a sandbox of its own: declare another sandbox block for agent %q.", prev.Name, a.Name, a.Sandbox, prev.Name, prev.SandboxRange, a.Name)
			continue
		}
		users[a.Sandbox] = a
		out = append(out, a)
	}
	return out
}

func (e *evaluator) decodeAgent(b *hcl.Block, bp *Blueprint) *Agent {
	content, diags := e.expand(b.Body).Content(agentSchema)
	e.diags = append(e.diags, diags...)
	if diags.HasErrors() {
		return nil
	}
	a := &Agent{Name: b.Labels[0], DeclRange: b.DefRange}
	a.Sandbox = e.ref(content.Attributes["sandbox"], rootSandbox, "")
	a.SandboxRange = content.Attributes["sandbox"].Expr.Range()
	before := len(e.diags)
	a.Command = e.strList(content.Attributes["command"])
	if a.Command == nil {
		e.notNull(content.Attributes["command"], before, `["nemoclave", "agent"]`)
	}
	if cmd := content.Attributes["command"]; cmd != nil && a.Command != nil && len(a.Command) == 0 {
		e.errorf(cmd.Expr.Range().Ptr(), "Empty command", "command needs at least the program to run, as in [\"nemoclave\", \"agent\"].")
	}
	a.Model = e.modelAlias(content.Attributes["model"], bp)
	if a.Model == "" && content.Attributes["model"] == nil && bp.Inference != nil {
		a.Model = bp.Inference.Default
	}
	a.Tools = e.refList(content.Attributes["tools"], rootPlugin, "tools")
	a.Memory = e.ref(content.Attributes["memory"], rootPlugin, "memory")
	a.Retrieval = e.ref(content.Attributes["retrieval"], rootPlugin, "retrieval")
	seen := map[string]*hcl.Block{}
	for _, sb := range content.Blocks {
		name := sb.Labels[0]
		if prev, ok := seen[name]; ok {
			e.errorf(sb.LabelRanges[0].Ptr(), "Duplicate subagent", "subagent %q is already declared at %s.", name, prev.DefRange)
			continue
		}
		seen[name] = sb
		c, diags := sb.Body.Content(subagentSchema)
		e.diags = append(e.diags, diags...)
		if c == nil {
			continue
		}
		s := &Subagent{Name: name, Description: e.str(c.Attributes["description"])}
		s.Model = e.modelAlias(c.Attributes["model"], bp)
		if s.Model == "" && c.Attributes["model"] == nil {
			s.Model = a.Model
		}
		s.Tools = e.refList(c.Attributes["tools"], rootPlugin, "tools")
		s.Memory = e.ref(c.Attributes["memory"], rootPlugin, "memory")
		s.Retrieval = e.ref(c.Attributes["retrieval"], rootPlugin, "retrieval")
		a.Subagents = append(a.Subagents, s)
	}
	return a
}

// modelAlias reads a model attribute: an alias of the inference block.
func (e *evaluator) modelAlias(attr *hcl.Attribute, bp *Blueprint) string {
	if attr == nil {
		return ""
	}
	alias := e.str(attr)
	if alias == "" {
		return ""
	}
	if bp.Inference == nil {
		e.errorf(attr.Expr.Range().Ptr(), "No inference block", "model = %q names an inference model alias, but the blueprint has no inference block. Add inference { model %q { provider = plugin.llm.<name>, model = \"...\" } }.", alias, alias)
		return ""
	}
	if bp.Inference.Model(alias) == nil {
		var known []string
		for _, m := range bp.Inference.Models {
			known = append(known, m.Alias)
		}
		e.errorf(attr.Expr.Range().Ptr(), "Unknown model alias", "model = %q names no model in the inference block%s. Known aliases: %v.", alias, suggest(alias, known), known)
		return ""
	}
	return alias
}
