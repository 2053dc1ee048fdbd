// Command logplugin is a tools plugin for the runtime's plugin log tests:
// it logs an untagged line when configured, a line tagged with the
// calling sandbox on every call of its "log" tool (on stderr and through
// Host.Log), panics on "crash" and answers "hang" only when the call is
// cancelled.
package main

import (
	"context"
	"encoding/json"
	"os"

	"github.com/hashicorp/go-hclog"

	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/schema"
	"github.com/nemoclave/nemoclave/sdk/status"
	"github.com/nemoclave/nemoclave/sdk/tools"
)

type logPlugin struct {
	plugin.Base
	label string
	host  plugin.Host
	log   hclog.Logger
}

func (*logPlugin) Info() plugin.Info {
	return plugin.Info{Name: "tools-logtest", Version: "0.0.1", Description: "Logs for the runtime's tests.", Kinds: []plugin.Kind{plugin.KindTools}}
}

func (*logPlugin) ConfigSchema() *schema.Schema {
	return &schema.Schema{Block: schema.Block{Attributes: []schema.Attribute{
		{Name: "label", Type: "string", Required: true, Description: "Written in every line."},
	}}}
}

func (p *logPlugin) Configure(ctx context.Context, cfg plugin.Config, host plugin.Host) error {
	var c struct{ Label string }
	if err := cfg.Decode(&c); err != nil {
		return err
	}
	p.label, p.host = c.Label, host
	p.log = hclog.New(&hclog.LoggerOptions{Output: os.Stderr, JSONFormat: true})
	p.log.Info("configured", "label", p.label)
	return nil
}

func (*logPlugin) ListTools(context.Context) ([]tools.Tool, error) {
	obj := json.RawMessage(`{"type":"object"}`)
	return []tools.Tool{{Name: "log", Description: "Logs the call.", InputSchema: obj}, {Name: "crash", Description: "Panics.", InputSchema: obj},
		{Name: "hang", Description: "Never answers.", InputSchema: obj}}, nil
}

func (p *logPlugin) CallTool(ctx context.Context, req *tools.CallRequest) (*tools.CallResult, error) {
	switch req.Name {
	case "log":
		p.log.Info("call on stderr", "label", p.label, "sandbox", req.Context.Sandbox)
		if err := p.host.Log(ctx, "info", "call through the host", map[string]string{"label": p.label, "sandbox": req.Context.Sandbox}); err != nil {
			return nil, err
		}
		return &tools.CallResult{Content: []tools.Content{tools.TextContent("logged")}}, nil
	case "crash":
		panic("logplugin crashes for " + p.label)
	case "hang":
		<-ctx.Done()
		return nil, status.Errorf(status.DeadlineExceeded, "hung until the caller gave up")
	}
	return nil, status.Errorf(status.NotFound, "no tool %q", req.Name)
}

func main() { plugin.Serve(&logPlugin{}) }
