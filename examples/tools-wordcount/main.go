// Command tools-wordcount is a nemoclave tools plugin that counts words.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/schema"
	"github.com/nemoclave/nemoclave/sdk/status"
	"github.com/nemoclave/nemoclave/sdk/tools"
)

// Plugin counts words. Config: min_length ignores shorter words.
type Plugin struct {
	plugin.Base
	minLength int
}

type config struct {
	MinLength int `json:"min_length"`
}

func (*Plugin) Info() plugin.Info {
	return plugin.Info{Name: "tools-wordcount", Version: "0.1.0",
		Description: "Counts words in a text.", Kinds: []plugin.Kind{plugin.KindTools}}
}

func (*Plugin) ConfigSchema() *schema.Schema {
	return &schema.Schema{Block: schema.Block{Attributes: []schema.Attribute{
		{Name: "min_length", Type: "number", Default: json.RawMessage(`1`),
			Description: "Words shorter than this are not counted."},
	}}}
}

func (*Plugin) ValidateConfig(_ context.Context, raw json.RawMessage) []plugin.Diagnostic {
	var c config
	if err := json.Unmarshal(raw, &c); err != nil {
		return []plugin.Diagnostic{plugin.Errorf(nil, "config: %v", err)}
	}
	if c.MinLength < 1 {
		return []plugin.Diagnostic{plugin.Errorf([]string{"min_length"}, "min_length must be at least 1, got %d", c.MinLength)}
	}
	return nil
}

func (p *Plugin) Configure(_ context.Context, cfg plugin.Config, _ plugin.Host) error {
	var c config
	if err := cfg.Decode(&c); err != nil {
		return err
	}
	p.minLength = c.MinLength
	return nil
}

func (*Plugin) ListTools(context.Context) ([]tools.Tool, error) {
	return []tools.Tool{{
		Name:        "wordcount",
		Description: "Count the words in a text.",
		InputSchema: json.RawMessage(`{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}`),
		ReadOnly:    true,
	}}, nil
}

func (p *Plugin) CallTool(_ context.Context, req *tools.CallRequest) (*tools.CallResult, error) {
	if req.Name != "wordcount" {
		return nil, status.Errorf(status.NotFound, "no tool %q; this plugin has wordcount", req.Name)
	}
	var args struct{ Text *string }
	if err := json.Unmarshal(req.Arguments, &args); err != nil || args.Text == nil {
		return tools.ErrorResult(`arguments must be {"text": "..."}`), nil // the model sees this and can retry
	}
	n := 0
	for _, w := range strings.Fields(*args.Text) {
		if len([]rune(w)) >= p.minLength {
			n++
		}
	}
	return &tools.CallResult{Content: []tools.Content{tools.TextContent(fmt.Sprintf("%d words", n))}}, nil
}

func main() { plugin.Serve(&Plugin{}) }
