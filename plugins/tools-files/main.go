package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/nemoclave/nemoclave/internal/wsfs"
	"github.com/nemoclave/nemoclave/policy"
	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/schema"
	"github.com/nemoclave/nemoclave/sdk/status"
	"github.com/nemoclave/nemoclave/sdk/tools"
)

const version = "0.1.0"

type config struct {
	// Root is the directory the tools may touch.
	Root string `json:"root"`
	// WorkspacePath is where the agent sees Root inside its sandbox, so
	// absolute paths the agent writes ("/workspace/src/main.go") resolve
	// even when the plugin runs outside the agent's mount namespace.
	WorkspacePath string `json:"workspace_path"`
	// MaxBytes bounds one read result, one write and each file searched.
	MaxBytes int64 `json:"max_bytes"`
	// ReadOnly hides write_file.
	ReadOnly bool `json:"read_only"`
	// Protected paths (relative to root) are never written, nor anything
	// below them; the workspace .git always is, unless GitWritable (then
	// only git's configuration and hooks are). The gateway also checks
	// the sandbox policy's own protected list before calling write_file.
	Protected   []string `json:"protected"`
	GitWritable bool     `json:"git_writable"`
}

func defaultConfig() config {
	return config{Root: "/workspace", WorkspacePath: "/workspace", MaxBytes: 1 << 20}
}

func parseConfig(raw json.RawMessage) (config, error) {
	c := defaultConfig()
	if len(raw) == 0 {
		return c, nil
	}
	var in struct {
		Root          *string  `json:"root"`
		WorkspacePath *string  `json:"workspace_path"`
		MaxBytes      *float64 `json:"max_bytes"`
		ReadOnly      *bool    `json:"read_only"`
		Protected     []string `json:"protected"`
		GitWritable   *bool    `json:"git_writable"`
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	if in.Root != nil {
		c.Root = *in.Root
	}
	if in.WorkspacePath != nil {
		c.WorkspacePath = *in.WorkspacePath
	}
	if in.MaxBytes != nil {
		c.MaxBytes = int64(*in.MaxBytes)
	}
	if in.ReadOnly != nil {
		c.ReadOnly = *in.ReadOnly
	}
	c.Protected = in.Protected
	if in.GitWritable != nil {
		c.GitWritable = *in.GitWritable
	}
	return c, nil
}

func (c config) validate() []plugin.Diagnostic {
	var ds []plugin.Diagnostic
	if c.Root == "" || !filepath.IsAbs(c.Root) {
		ds = append(ds, plugin.Errorf([]string{"root"}, "root must be an absolute directory path, got %q", c.Root))
	}
	if c.WorkspacePath != "" && !filepath.IsAbs(c.WorkspacePath) {
		ds = append(ds, plugin.Errorf([]string{"workspace_path"}, "workspace_path must be absolute (or empty), got %q", c.WorkspacePath))
	}
	if c.MaxBytes < 1 || c.MaxBytes > 1<<30 {
		ds = append(ds, plugin.Errorf([]string{"max_bytes"}, "max_bytes must be between 1 and 1073741824, got %d", c.MaxBytes))
	}
	return ds
}

type filesPlugin struct {
	plugin.Base

	mu   sync.RWMutex
	cfg  config
	root *os.Root
	dir  *wsfs.Dir
}

func (*filesPlugin) Info() plugin.Info {
	return plugin.Info{
		Name:        "tools-files",
		Version:     version,
		Description: "List, read, write and search files inside the workspace, and nowhere else.",
		Kinds:       []plugin.Kind{plugin.KindTools},
	}
}

func (*filesPlugin) ConfigSchema() *schema.Schema {
	return &schema.Schema{Block: schema.Block{
		Description: "File tools confined to one directory tree. Paths that resolve outside root (\"..\", other absolute paths, symlinks pointing out) are refused.",
		Attributes: []schema.Attribute{
			{Name: "root", Type: "string", Default: json.RawMessage(`"/workspace"`), Description: "Directory the tools may touch (absolute)."},
			{Name: "workspace_path", Type: "string", Default: json.RawMessage(`"/workspace"`), Description: "Where the agent sees root; absolute paths below it are mapped onto root."},
			{Name: "max_bytes", Type: "number", Default: json.RawMessage("1048576"), Description: "Largest read result, write, or file searched, in bytes."},
			{Name: "read_only", Type: "bool", Default: json.RawMessage("false"), Description: "Offer only list_files, read_file and search_files."},
			{Name: "protected", Type: "list(string)", Description: "Paths relative to root that write_file must never write (nor anything below them), like the sandbox policy's protected list. .git is always protected."},
			{Name: "git_writable", Type: "bool", Default: json.RawMessage("false"), Description: "Let write_file write inside .git, except git's configuration and hooks (config, hooks, info, modules, worktrees); match the sandbox policy's git_writable."},
		},
	}}
}

func (*filesPlugin) ValidateConfig(_ context.Context, raw json.RawMessage) []plugin.Diagnostic {
	c, err := parseConfig(raw)
	if err != nil {
		return []plugin.Diagnostic{plugin.Errorf(nil, "%v", err)}
	}
	return c.validate()
}

func (p *filesPlugin) Configure(_ context.Context, cfg plugin.Config, _ plugin.Host) error {
	c, err := parseConfig(cfg.JSON) // the SDK ran ValidateConfig already
	if err != nil {
		return err
	}
	root, err := os.OpenRoot(c.Root)
	if err != nil {
		return status.Errorf(status.InvalidArgument, "open root %s: %v (create the directory or set root to an existing one)", c.Root, err)
	}
	fsp := policy.Filesystem{Protected: c.Protected, GitWritable: c.GitWritable}
	dir := wsfs.New(c.Root, wsfs.Options{Protected: fsp.EffectiveProtected(), ReadOnly: c.ReadOnly})
	p.mu.Lock()
	old := p.root
	p.cfg, p.root, p.dir = c, root, dir
	p.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return nil
}

// state returns the current config and root; Configure may swap them.
func (p *filesPlugin) state() (*workspace, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.root == nil {
		return nil, status.Errorf(status.Unavailable, "tools-files is not configured yet")
	}
	return &workspace{root: p.root, dir: p.dir, cfg: p.cfg}, nil
}

func (p *filesPlugin) ListTools(context.Context) ([]tools.Tool, error) {
	ws, err := p.state()
	if err != nil {
		return nil, err
	}
	c := ws.cfg
	ts := []tools.Tool{listFilesTool, readFileTool, searchFilesTool}
	if !c.ReadOnly {
		ts = append(ts, writeFileTool)
	}
	return ts, nil
}

func (p *filesPlugin) CallTool(ctx context.Context, req *tools.CallRequest) (*tools.CallResult, error) {
	ws, err := p.state()
	if err != nil {
		return nil, err
	}
	args := req.Arguments
	if len(args) == 0 {
		args = json.RawMessage("{}")
	}
	res, err := ws.call(ctx, req.Name, args)
	if err == nil && res.IsError {
		// The refusal the model sees, for the operator too (a path outside
		// the workspace, a protected file), in the calling sandbox's
		// plugin log only.
		var text string
		if len(res.Content) > 0 {
			text = res.Content[0].Text
		}
		plugin.Logger(ctx).Info("tool call failed", "tool", req.Name, "agent", req.Context.Agent, "error", text)
	}
	return res, err
}

func (ws *workspace) call(ctx context.Context, name string, args json.RawMessage) (*tools.CallResult, error) {
	switch name {
	case listFilesTool.Name:
		return ws.listFiles(ctx, args), nil
	case readFileTool.Name:
		return ws.readFile(ctx, args), nil
	case searchFilesTool.Name:
		return ws.searchFiles(ctx, args), nil
	case writeFileTool.Name:
		if ws.cfg.ReadOnly {
			return tools.ErrorResult("write_file is disabled: this workspace is read-only"), nil
		}
		return ws.writeFile(ctx, args), nil
	}
	return nil, status.Errorf(status.NotFound, "tool %q: this plugin serves list_files, read_file, write_file and search_files", name)
}

func main() {
	plugin.Serve(&filesPlugin{cfg: defaultConfig()})
}
