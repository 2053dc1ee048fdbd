package blueprints

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/nemoclave/nemoclave/internal/pluginsource"
	"github.com/nemoclave/nemoclave/sdk/schema"
)

// Plugin source types.
const (
	SourceBuiltin   = "builtin"   // builtin/<kind>-<name>, shipped with nemoclave
	SourceMCP       = "mcp"       // an MCP server imported as a tools plugin
	SourcePath      = "path"      // a plugin binary on disk (./bin/x, /opt/x)
	SourceInstalled = "installed" // an installed plugin address (example.com/org/name)
)

// Plugin is one plugin block, ready to launch and configure.
type Plugin struct {
	// Kind is llm, embeddings, retrieval, memory, tools or dataproc.
	Kind string `json:"kind"`
	Name string `json:"name"`
	// Address is how the blueprint refers to it: plugin.<kind>.<name>.
	Address string `json:"address"`
	// Source is as written; SourceType classifies it.
	Source     string `json:"source"`
	SourceType string `json:"source_type"`
	// Path is the absolute binary path for path sources.
	Path string `json:"path,omitempty"`
	// Version is the plugin block's version constraint, if any.
	Version string `json:"version,omitempty"`
	// Timeout bounds each call to the plugin (a Go duration, "90s");
	// empty means the host's default for the kind.
	Timeout string `json:"timeout,omitempty"`
	// Unconfined is confine = false: the plugin runs outside any plugin
	// box, as the daemon's user with the daemon's view of the machine.
	// Validate, plan and run warn; the daemon refuses it unless started
	// with --allow-unconfined-plugins.
	Unconfined bool `json:"unconfined,omitempty"`
	// Locked is what the project lock fixes (set when the SchemaSource is
	// a PluginChecker and the source is an address or a path).
	Locked *PluginPin `json:"locked,omitempty"`
	// MCP is set for source = "mcp".
	MCP *MCPServer `json:"mcp,omitempty"`
	// Config is the decoded config exactly as Configure receives it,
	// except that credentials are still {"credential": "NAME"}
	// placeholders: resolve them with ResolveCredentials in the host.
	// Not in plan output (use DisplayConfig), since sensitive values are in
	// it.
	Config json.RawMessage `json:"-"`
	// DisplayConfig is Config with sensitive values replaced by
	// "(sensitive)", for plans and logs.
	DisplayConfig json.RawMessage `json:"config,omitempty"`
	// Credentials lists the placeholders in Config.
	Credentials []CredentialRef `json:"credentials,omitempty"`
	// Wiring lists references to other plugins in Config, so the host can
	// give this plugin access to them (through the GRPCBroker) and start
	// them first.
	Wiring []PluginWire `json:"wiring,omitempty"`
	// Schema is the schema Config was decoded with.
	Schema *schema.Schema `json:"-"`
	// DeclRange is the plugin block's header, for runtime errors.
	DeclRange hcl.Range `json:"-"`
}

// PluginWire is one reference from a plugin's config to another plugin.
type PluginWire struct {
	// Path is the attribute path in the config (see CredentialRef.Path).
	Path []string `json:"path"`
	Kind string   `json:"kind"`
	Name string   `json:"name"`
}

// MCPServer is how to reach an imported MCP server: a command to run
// (stdio transport) or a URL (streamable HTTP). Exactly one is set.
type MCPServer struct {
	Command []string `json:"command,omitempty"`
	URL     string   `json:"url,omitempty"`
}

var pluginSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "source", Required: true}, {Name: "version"}, {Name: "command"}, {Name: "url"}, {Name: "timeout"}, {Name: "confine"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "config"}},
}

// mcpSchema is the config of source = "mcp" plugins. The evaluator owns
// it: the MCP import is part of nemoclave, not a plugin to ask.
var mcpSchema = &schema.Schema{Block: schema.Block{
	Description: "An MCP server imported as a tools plugin.",
	Attributes: []schema.Attribute{
		{Name: "env", Type: "map(string)", Description: "Environment of the server process (never credentials; use bearer_token)."},
		{Name: "headers", Type: "map(string)", Description: "Extra HTTP headers for url servers."},
		{Name: "bearer_token", Type: "string", Credential: true, Sensitive: true, Description: "credential(\"NAME\") sent as Authorization: Bearer to url servers."},
		{Name: "timeout", Type: "string", Description: "Per-call timeout, e.g. \"60s\"."},
		{Name: "tool_prefix", Type: "string", Description: "Prefix for every tool name, to keep several servers' tools apart."},
		{Name: "sandbox", Type: "string", Description: "For command servers: \"local\" (default: a sandbox of its own), \"inherit\" (the plugin's own confinement) or \"none\" (unconfined, explicit opt-out)."},
		{Name: "read_only", Type: "list(string)", Description: "sandbox = \"local\": host paths the server may read, besides the system directories."},
		{Name: "workspace", Type: "string", Description: "sandbox = \"local\": host directory mounted at /workspace for the server, e.g. \"${path.blueprint}/workspace\"."},
		{Name: "workspace_writable", Type: "bool", Description: "sandbox = \"local\": let the server write to its workspace."},
		{Name: "memory_mb", Type: "number", Description: "sandbox = \"local\": memory limit of the server's sandbox."},
	},
}}

// decodePlugins decodes every plugin block, in kind then name order.
func (e *evaluator) decodePlugins() []*Plugin {
	out := []*Plugin{}
	for _, kind := range PluginKinds {
		blocks := e.decl.plugins[kind]
		for _, name := range sortedKeys(blocks) {
			if p := e.decodePlugin(kind, name, blocks[name]); p != nil {
				out = append(out, p)
			}
		}
	}
	return out
}

func (e *evaluator) decodePlugin(kind, name string, b *hcl.Block) *Plugin {
	content, diags := e.expand(b.Body).Content(pluginSchema)
	e.diags = append(e.diags, diags...)
	if diags.HasErrors() {
		return nil
	}
	p := &Plugin{Kind: kind, Name: name, Address: "plugin." + kind + "." + name, DeclRange: b.DefRange}
	srcAttr := content.Attributes["source"]
	p.Source = e.str(srcAttr)
	if p.Source == "" {
		if srcAttr != nil {
			e.errorf(srcAttr.Expr.Range().Ptr(), "Empty plugin source", "source must name a builtin plugin (builtin/llm-openai), \"mcp\", an installed plugin address or a path.")
		}
		return nil
	}
	if a := content.Attributes["version"]; a != nil {
		p.Version = e.str(a)
		if p.Version != "" {
			e.checkPluginVersion(p.Version, a.Expr.Range())
		}
	}
	if a := content.Attributes["timeout"]; a != nil {
		p.Timeout = e.str(a)
		if d, err := time.ParseDuration(p.Timeout); err != nil || d <= 0 {
			e.errorf(a.Expr.Range().Ptr(), "Invalid plugin timeout", "timeout = %q: write a positive duration like \"90s\" or \"10m\"; it bounds each call to the plugin.", p.Timeout)
		}
	}
	// Only a literal false opts out: a value that fails to evaluate is an
	// error (attrValue reports it), never an opt-out.
	if a := content.Attributes["confine"]; a != nil {
		if v, ok := e.attrValue(a, cty.Bool); ok && v.False() {
			p.Unconfined = true
		}
	}
	if a := content.Attributes["confine"]; p.Unconfined {
		p.Unconfined = true
		e.warnf(a.Expr.Range().Ptr(), "Plugin runs unconfined",
			"%s has confine = false: it runs outside any plugin box, as the daemon's user, able to read $NEMOCLAVE_HOME (credentials, state), every workspace and your home directory, and to reach any host directly, unaudited. A daemon refuses to start it unless started with --allow-unconfined-plugins. Remove confine = false unless you trust this plugin as much as nemoclave itself.", p.Address)
	}
	cmdAttr, urlAttr := content.Attributes["command"], content.Attributes["url"]
	srcRange := srcAttr.Expr.Range()
	p.SourceType = e.classifySource(kind, p.Source, srcRange)
	switch p.SourceType {
	case SourceMCP:
		p.MCP = e.decodeMCP(kind, b, cmdAttr, urlAttr)
	case SourcePath:
		p.Path = p.Source
		if !filepath.IsAbs(p.Path) {
			p.Path = filepath.Join(e.dir, p.Path)
		}
		if e.loader.opts.Root != "" {
			e.errorf(srcRange.Ptr(), "Plugin from a path in an upload",
				"%s: source = %q runs a program from a path on the daemon's host, which an uploaded (remote) blueprint may not do; ask an admin to install the plugin on the daemon (`nemoclave plugin install`) and name it by its address.", p.Address, p.Source)
			p.SourceType = ""
			return p
		}
	}
	if p.SourceType != SourceMCP {
		for _, a := range []*hcl.Attribute{cmdAttr, urlAttr} {
			if a != nil {
				e.errorf(a.NameRange.Ptr(), "Unexpected attribute", "%s is only for source = \"mcp\" plugins; other plugins take their settings in config {}.", a.Name)
			}
		}
	}
	var cfg *hcl.Block
	for i, c := range content.Blocks {
		if i == 0 {
			cfg = c
			continue
		}
		e.errorf(c.DefRange.Ptr(), "Duplicate config block", "A plugin has one config block; the first is at %s.", cfg.DefRange)
	}
	if p.SourceType != "" && e.checkPlugin(p, srcRange) {
		e.decodePluginConfig(p, srcRange, cfg)
	}
	return p
}

// classifySource decides the source type and checks its form, with the
// grammar the plugin manager and `plugin install` share
// (internal/pluginsource).
func (e *evaluator) classifySource(kind, src string, rng hcl.Range) string {
	s, err := pluginsource.Parse(src, true)
	if err != nil {
		e.errorf(rng.Ptr(), "Invalid plugin source", "%v", err)
		return ""
	}
	switch s.Type {
	case pluginsource.MCP:
		return SourceMCP
	case pluginsource.Builtin:
		if s.Kind() != kind {
			e.errorf(rng.Ptr(), "Plugin kind mismatch", "%s is not of kind %s: builtin plugin names start with their kind (builtin/%s-<name>). Check the block's first label or the source.", src, kind, kind)
		}
		return SourceBuiltin
	case pluginsource.Path:
		return SourcePath
	}
	if s.Version != "" {
		e.errorf(rng.Ptr(), "Version in plugin source", "Write the address without @%s and the version as an attribute: version = \"%s\" (or a constraint like \">= %s\").", s.Version, s.Version, s.Version)
		return ""
	}
	return SourceInstalled
}

func (e *evaluator) decodeMCP(kind string, b *hcl.Block, cmdAttr, urlAttr *hcl.Attribute) *MCPServer {
	if kind != "tools" {
		e.errorf(b.LabelRanges[0].Ptr(), "MCP servers are tools plugins", "source = \"mcp\" imports an MCP server's tools, so the block must be plugin \"tools\" %q.", b.Labels[1])
	}
	m := &MCPServer{}
	switch {
	case cmdAttr != nil && urlAttr != nil:
		e.errorf(urlAttr.NameRange.Ptr(), "Conflicting MCP transport", "Give either command (run the server over stdio) or url (streamable HTTP), not both.")
	case cmdAttr == nil && urlAttr == nil:
		e.errorf(b.DefRange.Ptr(), "Missing MCP transport", "An mcp plugin needs command = [\"server\", \"args\"...] or url = \"https://...\".")
	case cmdAttr != nil:
		m.Command = e.strList(cmdAttr)
		if m.Command != nil && len(m.Command) == 0 { // nil: already reported
			e.errorf(cmdAttr.Expr.Range().Ptr(), "Empty command", "command needs at least the program to run.")
		}
	default:
		m.URL = e.str(urlAttr)
		if !strings.HasPrefix(m.URL, "https://") && !strings.HasPrefix(m.URL, "http://") {
			e.errorf(urlAttr.Expr.Range().Ptr(), "Invalid MCP url", "url = %q must be an http:// or https:// URL.", m.URL)
		}
	}
	return m
}
