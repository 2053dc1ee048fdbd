package sdktest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/sdk/dataproc"
	"github.com/nemoclave/nemoclave/sdk/plugin"
)

// Option supplies what a suite cannot guess about a plugin.
type Option func(*options)

type options struct {
	config   json.RawMessage
	stateDir string
	wirings  []wiring
	timeout  time.Duration

	model         string
	prompt        string
	deterministic bool
	embedInputs   []string

	dimensions  int
	textQueries bool

	toolSamples []toolSample
	documents   []docSample

	// binary, set by RunBinary, launches the plugin under test as a
	// process; nil means serve the plugin.Plugin in-process.
	binary   *binaryTarget
	launcher Launcher
	env      []string
}

type wiring struct {
	attr   string
	kind   plugin.Kind
	target plugin.Plugin
	config json.RawMessage
}

type toolSample struct {
	name string
	args json.RawMessage
}

type docSample struct {
	operation string
	doc       dataproc.Document
	options   json.RawMessage
}

func collect(opts []Option) *options {
	o := &options{timeout: time.Minute, prompt: "Say hello in five words.", dimensions: 8,
		embedInputs: []string{"hello world", "the quick brown fox jumps over the lazy dog", "nemoclave", "ünïcödé ✓ 日本語"}}
	for _, f := range opts {
		f(o)
	}
	return o
}

// WithConfig is the plugin's config block as JSON, as the host passes it
// after decoding the blueprint. Schema defaults fill absent attributes.
func WithConfig(config string) Option {
	return func(o *options) { o.config = json.RawMessage(config) }
}

// WithStateDir overrides the state directory (default: t.TempDir()).
func WithStateDir(dir string) Option { return func(o *options) { o.stateDir = dir } }

// WithWiring wires attribute attr to target, a plugin of kind, started
// in-process and configured with its schema defaults plus config (may be
// ""). Use it for a plugin that reaches another through plugin.Host, such
// as a memory store that needs embeddings.
func WithWiring(attr string, kind plugin.Kind, target plugin.Plugin, config string) Option {
	return func(o *options) {
		o.wirings = append(o.wirings, wiring{attr: attr, kind: kind, target: target, config: json.RawMessage(config)})
	}
}

// WithTimeout bounds each suite (default one minute); raise it for
// plugins that call slow remote services.
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithModel names the model LLM and Embeddings use (default: the
// provider's first listed model for LLM, "" for embeddings).
func WithModel(model string) Option { return func(o *options) { o.model = model } }

// WithPrompt replaces the user message the LLM suite sends.
func WithPrompt(prompt string) Option { return func(o *options) { o.prompt = prompt } }

// WithDeterministic asserts that the LLM answers the same prompt with the
// same text through Chat and through ChatStream — true for fakes and for
// providers run at temperature 0 that promise it.
func WithDeterministic() Option { return func(o *options) { o.deterministic = true } }

// WithEmbedInputs replaces the texts the Embeddings suite embeds (at
// least two distinct ones).
func WithEmbedInputs(inputs ...string) Option { return func(o *options) { o.embedInputs = inputs } }

// WithDimensions sets the vector size the Retrieval suite creates its
// collections with (default 8); set it to what the store requires.
func WithDimensions(n int) Option { return func(o *options) { o.dimensions = n } }

// WithTextQueries declares that the store embeds text itself, so the
// Retrieval suite also upserts documents without vectors and queries by
// text.
func WithTextQueries() Option { return func(o *options) { o.textQueries = true } }

// WithToolSample gives arguments (a JSON object) with which tool name
// must succeed. Tools without a sample are listed and schema-checked but
// not called.
func WithToolSample(name, args string) Option {
	return func(o *options) {
		o.toolSamples = append(o.toolSamples, toolSample{name: name, args: json.RawMessage(args)})
	}
}

// WithDocument gives a document operation must transform successfully,
// with options (a JSON object, or ""). Without any, the DataProc suite
// tries a short text/plain document on every operation that takes text.
func WithDocument(operation string, doc dataproc.Document, opts string) Option {
	return func(o *options) {
		var opt json.RawMessage
		if opts != "" {
			opt = json.RawMessage(opts)
		}
		o.documents = append(o.documents, docSample{operation: operation, doc: doc, options: opt})
	}
}

// start serves p in-process and configures it as the host would, failing
// the test on any error diagnostic. It returns the options it configured
// with, so a test can configure again as the host does on a change.
func start(t *testing.T, p plugin.Plugin, o *options) (*plugin.Client, plugin.ConfigureOptions) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), o.timeout)
	defer cancel()
	c := connect(t, ctx, p, o)
	cfg, err := withDefaults(ctx, c, o.config)
	if err != nil {
		t.Fatalf("sdktest: %v", err)
	}
	opts := plugin.ConfigureOptions{Config: cfg, StateDir: o.stateDir}
	if opts.StateDir == "" {
		opts.StateDir = t.TempDir()
	}
	for _, w := range o.wirings {
		target := plugin.InProcess(t, w.target)
		tcfg, err := withDefaults(ctx, target, w.config)
		if err != nil {
			t.Fatalf("sdktest: wired %s: %v", w.attr, err)
		}
		diags, err := target.Configure(ctx, plugin.ConfigureOptions{Config: tcfg, StateDir: t.TempDir()})
		failOnDiags(t, "configure the plugin wired to "+w.attr, diags, err)
		opts.Wirings = append(opts.Wirings, plugin.HostWiring{
			Wiring: plugin.Wiring{Attribute: w.attr, Kind: w.kind, Target: "plugin." + string(w.kind) + ".sdktest"},
			Plugin: target,
		})
	}
	diags, err := c.Configure(ctx, opts)
	failOnDiags(t, "configure the plugin", diags, err)
	return c, opts
}

func failOnDiags(t *testing.T, what string, diags []plugin.Diagnostic, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	for _, d := range diags {
		if d.Severity != plugin.SeverityWarning {
			t.Fatalf("%s: %s: %s (path %v); pass a working config with sdktest.WithConfig", what, d.Summary, d.Detail, d.Path)
		}
	}
}

// withDefaults adds the schema's top-level attribute defaults to config,
// as the host does after decoding the blueprint.
func withDefaults(ctx context.Context, c *plugin.Client, config json.RawMessage) (json.RawMessage, error) {
	sc, err := c.Schema(ctx)
	if err != nil {
		return nil, err
	}
	obj := map[string]json.RawMessage{}
	if len(config) > 0 {
		if err := json.Unmarshal(config, &obj); err != nil {
			return nil, &configError{err}
		}
	}
	for _, a := range sc.Block.Attributes {
		if _, set := obj[a.Name]; !set && len(a.Default) > 0 {
			obj[a.Name] = a.Default
		}
	}
	if len(obj) == 0 {
		return nil, nil
	}
	return json.Marshal(obj)
}

type configError struct{ err error }

func (e *configError) Error() string {
	return "WithConfig must be a JSON object of the plugin's attributes: " + e.err.Error()
}

// connect returns a host-side client of the plugin under test: p served
// in-process, or with RunBinary a freshly launched process.
func connect(t *testing.T, ctx context.Context, p plugin.Plugin, o *options) *plugin.Client {
	t.Helper()
	if o.binary != nil {
		return o.binary.launch(t, ctx)
	}
	if p == nil {
		t.Fatal("sdktest: the plugin is nil; pass the plugin value, or use sdktest.RunBinary for a built binary")
	}
	return plugin.InProcess(t, p)
}

// suiteContext bounds one suite.
func suiteContext(t *testing.T, o *options) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), o.timeout)
	t.Cleanup(cancel)
	return ctx
}
