package replayplugin

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/nemoclave/nemoclave/plugins/llm-openai/openaiplugin"
	"github.com/nemoclave/nemoclave/sdk/llm"
	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/schema"
	"github.com/nemoclave/nemoclave/sdk/status"
)

// Version of the plugin.
const Version = "0.1.0"

// Config is the plugin's blueprint config block.
type Config struct {
	// Cassette is the file answers come from (replay) or go to (record).
	Cassette string `json:"cassette"`
	// Mode is "replay" (default) or "record".
	Mode string `json:"mode"`
	// UpstreamBaseURL is the OpenAI-compatible API recorded from.
	UpstreamBaseURL string `json:"upstream_base_url"`
	// UpstreamAPIKey is credential("NAME") for the upstream.
	UpstreamAPIKey string `json:"upstream_api_key"`
	// UpstreamModel replaces the request's model when recording.
	UpstreamModel string `json:"upstream_model"`
}

// Plugin is the llm-replay plugin.
type Plugin struct {
	plugin.Base
	mu       sync.Mutex
	cfg      Config
	cassette *Cassette
	upstream *openaiplugin.Plugin
}

// New returns an unconfigured plugin.
func New() *Plugin { return &Plugin{} }

// Info describes the plugin.
func (*Plugin) Info() plugin.Info {
	return plugin.Info{
		Name:         "llm-replay",
		Version:      Version,
		Description:  "Deterministic record and replay of LLM conversations from a cassette file, for offline demos and tests.",
		Kinds:        []plugin.Kind{plugin.KindLLM},
		Capabilities: []string{"streaming", "tools"},
	}
}

// ConfigSchema declares the config block.
func (*Plugin) ConfigSchema() *schema.Schema {
	return &schema.Schema{Block: schema.Block{
		Description: "Answers from a cassette of recorded conversations (replay), or records one from an OpenAI-compatible provider (record).",
		Attributes: []schema.Attribute{
			{Name: "cassette", Required: true, Description: "Cassette file (JSON; format in the plugin's README)."},
			{Name: "mode", Default: json.RawMessage(`"replay"`), Description: `"replay" answers from the cassette offline; "record" forwards to the upstream and saves each exchange.`},
			{Name: "upstream_base_url", Description: "OpenAI-compatible API root including /v1, for record mode."},
			{Name: "upstream_api_key", Credential: true, Sensitive: true, Description: `Upstream key as credential("NAME"), for record mode.`},
			{Name: "upstream_model", Description: "Model sent upstream when recording (default: the request's model)."},
		},
	}}
}

func parseConfig(raw json.RawMessage) (Config, []plugin.Diagnostic) {
	c := Config{Mode: "replay"}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &c); err != nil {
			return c, []plugin.Diagnostic{plugin.Errorf(nil, "config is not valid JSON for llm-replay: %v", err)}
		}
	}
	var diags []plugin.Diagnostic
	if c.Mode == "" {
		c.Mode = "replay"
	}
	if c.Cassette == "" {
		diags = append(diags, plugin.Errorf([]string{"cassette"}, "cassette is required: the file to replay from or record to"))
	}
	switch c.Mode {
	case "replay":
	case "record":
		if c.UpstreamBaseURL == "" {
			diags = append(diags, plugin.Errorf([]string{"upstream_base_url"}, "record mode needs upstream_base_url (an OpenAI-compatible API such as https://integrate.api.nvidia.com/v1)"))
		}
	default:
		diags = append(diags, plugin.Errorf([]string{"mode"}, "mode %q must be \"replay\" or \"record\"", c.Mode))
	}
	return c, diags
}

// ValidateConfig checks the config without touching files or network.
func (*Plugin) ValidateConfig(_ context.Context, raw json.RawMessage) []plugin.Diagnostic {
	_, diags := parseConfig(raw)
	return diags
}

// Configure loads the cassette and, in record mode, the upstream client.
func (p *Plugin) Configure(ctx context.Context, cfg plugin.Config, host plugin.Host) error {
	c, diags := parseConfig(cfg.JSON)
	for _, d := range diags {
		return fmt.Errorf("llm-replay config: %s", d.Summary)
	}
	cas, err := LoadCassette(c.Cassette, c.Mode == "record")
	if err != nil {
		return err
	}
	var up *openaiplugin.Plugin
	if c.Mode == "record" {
		up = openaiplugin.New()
		ucfg, _ := json.Marshal(map[string]any{"base_url": c.UpstreamBaseURL, "api_key": c.UpstreamAPIKey})
		if err := up.Configure(ctx, plugin.Config{JSON: ucfg}, host); err != nil {
			return fmt.Errorf("llm-replay upstream: %w", err)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cfg, p.cassette, p.upstream = c, cas, up
	return nil
}

func (p *Plugin) snapshot() (Config, *Cassette, *openaiplugin.Plugin, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cassette == nil {
		return p.cfg, nil, nil, status.Errorf(status.Unavailable, "llm-replay is not configured: set cassette in its config block")
	}
	return p.cfg, p.cassette, p.upstream, nil
}

// ListModels reports "replay" and every model named in the cassette.
func (p *Plugin) ListModels(context.Context) ([]llm.Model, error) {
	_, cas, _, err := p.snapshot()
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{"replay": true}
	var more []string
	for _, it := range cas.Interactions {
		if m := it.Response.Model; m != "" && !seen[m] {
			seen[m] = true
			more = append(more, m)
		}
	}
	sort.Strings(more)
	out := []llm.Model{{ID: "replay", OwnedBy: "nemoclave", Capabilities: []string{"streaming", "tools"}}}
	for _, m := range more {
		out = append(out, llm.Model{ID: m, OwnedBy: "cassette", Capabilities: []string{"streaming", "tools"}})
	}
	return out, nil
}

// errNoRecording says what did not match and how to record it.
func errNoRecording(cfg Config, req *llm.ChatRequest, fp string) error {
	user, step := lastUserAndStep(req)
	if len(user) > 120 {
		user = user[:120] + "…"
	}
	return status.Errorf(status.NotFound,
		"llm-replay: no recording in %s matches this request (fingerprint %s, last user message %q, step %d). "+
			"Record it: set mode = \"record\" with upstream_base_url and upstream_api_key and run the same conversation, "+
			"or add an interaction with {\"match\": {\"last_user\": %q, \"step\": %d}} or {\"match\": {\"default\": true}} (format: plugins/llm-replay/README.md)",
		cfg.Cassette, fp, user, step, user, step)
}

// Chat answers one request.
func (p *Plugin) Chat(ctx context.Context, req *llm.ChatRequest) (*llm.ChatResponse, error) {
	cfg, cas, up, err := p.snapshot()
	if err != nil {
		return nil, err
	}
	fp := Fingerprint(req)
	if cfg.Mode == "record" {
		resp, err := up.Chat(ctx, p.upstreamRequest(cfg, req))
		if err != nil {
			return nil, err
		}
		if err := p.record(cfg, req, fp, resp, nil); err != nil {
			return nil, err
		}
		resp.Model = req.Model
		return resp, nil
	}
	it := cas.find(req, fp)
	if it == nil {
		return nil, errNoRecording(cfg, req, fp)
	}
	return render(it, req, responseID(it, fp)), nil
}

// ChatStream answers one request as chunks.
func (p *Plugin) ChatStream(ctx context.Context, req *llm.ChatRequest, send func(*llm.ChatChunk) error) error {
	cfg, cas, up, err := p.snapshot()
	if err != nil {
		return err
	}
	fp := Fingerprint(req)
	if cfg.Mode == "record" {
		var got []*llm.ChatChunk
		err := up.ChatStream(ctx, p.upstreamRequest(cfg, req), func(c *llm.ChatChunk) error {
			cc := *c
			got = append(got, &cc)
			c.Model = req.Model
			return send(c)
		})
		if err != nil {
			return err
		}
		return p.record(cfg, req, fp, llm.Accumulate(got), got)
	}
	it := cas.find(req, fp)
	if it == nil {
		return errNoRecording(cfg, req, fp)
	}
	for _, c := range chunks(it, render(it, req, responseID(it, fp)), req) {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := send(c); err != nil {
			return err
		}
	}
	return nil
}

func responseID(it *Interaction, fp string) string {
	if it.Response.ID != "" {
		return it.Response.ID
	}
	return "replay-" + strings.TrimPrefix(fp, "sha256:")[:12]
}

func (p *Plugin) upstreamRequest(cfg Config, req *llm.ChatRequest) *llm.ChatRequest {
	r := *req
	if cfg.UpstreamModel != "" {
		r.Model = cfg.UpstreamModel
	}
	return &r
}

// record saves an exchange, replacing an earlier one with the same
// fingerprint, and rewrites the cassette file.
func (p *Plugin) record(cfg Config, req *llm.ChatRequest, fp string, resp *llm.ChatResponse, streamed []*llm.ChatChunk) error {
	it := Interaction{Match: Match{Fingerprint: fp}, Request: Normalise(req), Response: Response{
		ID: resp.ID, Model: resp.Model, Text: resp.Message.Text(), FinishReason: resp.FinishReason,
		Usage: &Usage{InputTokens: resp.Usage.InputTokens, OutputTokens: resp.Usage.OutputTokens, CachedInputTokens: resp.Usage.CachedInputTokens},
	}}
	if user, _ := lastUserAndStep(req); user != "" {
		it.Name = collapse(user)
		if len(it.Name) > 60 {
			it.Name = it.Name[:60]
		}
	}
	for _, tc := range resp.Message.ToolCalls {
		it.Response.ToolCalls = append(it.Response.ToolCalls, ToolCall{ID: tc.ID, Name: tc.Name, Arguments: tc.Arguments})
	}
	for _, c := range streamed {
		rc := Chunk{Text: c.DeltaText, FinishReason: c.FinishReason}
		for _, d := range c.ToolCalls {
			rc.ToolCalls = append(rc.ToolCalls, ToolCallDelta{Index: d.Index, ID: d.ID, Name: d.Name, Arguments: d.ArgumentsDelta})
		}
		if c.Usage != nil {
			rc.Usage = &Usage{InputTokens: c.Usage.InputTokens, OutputTokens: c.Usage.OutputTokens, CachedInputTokens: c.Usage.CachedInputTokens}
		}
		it.Chunks = append(it.Chunks, rc)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	replaced := false
	for i := range p.cassette.Interactions {
		if p.cassette.Interactions[i].Match.Fingerprint == fp {
			p.cassette.Interactions[i], replaced = it, true
		}
	}
	if !replaced {
		p.cassette.Interactions = append(p.cassette.Interactions, it)
	}
	if err := p.cassette.Save(cfg.Cassette); err != nil {
		return status.Errorf(status.Internal, "%v", err)
	}
	return nil
}

var _ llm.Provider = (*Plugin)(nil)
