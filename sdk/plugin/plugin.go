package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/nemoclave/nemoclave/sdk/schema"
)

// Kind names a plugin capability.
type Kind string

const (
	KindLLM        Kind = "llm"
	KindEmbeddings Kind = "embeddings"
	KindRetrieval  Kind = "retrieval"
	KindMemory     Kind = "memory"
	KindTools      Kind = "tools"
	KindDataProc   Kind = "dataproc"
)

// Info describes a plugin. Kinds is explicit: Serve refuses to start when the
// plugin does not implement the interface of a declared kind, so a typo
// cannot silently serve nothing.
type Info struct {
	Name         string
	Version      string
	Description  string
	Kinds        []Kind
	Capabilities []string
}

// Severity of a Diagnostic.
type Severity int

const (
	SeverityError Severity = iota + 1
	SeverityWarning
)

// Diagnostic is a problem with a plugin's configuration. Path names the
// attribute (["retry", "max"]) so the host can point at its source range.
type Diagnostic struct {
	Severity Severity
	Summary  string
	Detail   string
	Path     []string
}

// Errorf is a convenience for an error diagnostic about path.
func Errorf(path []string, format string, args ...any) Diagnostic {
	return Diagnostic{Severity: SeverityError, Summary: fmt.Sprintf(format, args...), Path: path}
}

// ConfigError is the error of the error diagnostics in ds, or nil when
// there are none (warnings do not count): "<name> config: <summary>;
// <summary>". Configure uses it on its own parse of the config: the SDK
// refuses a config with errors before Configure runs, but a plugin used
// in-process (a test, a benchmark) is configured without the SDK's server.
func ConfigError(name string, ds []Diagnostic) error {
	var msgs []string
	for _, d := range ds {
		if d.Severity != SeverityWarning {
			msgs = append(msgs, d.Summary)
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return fmt.Errorf("%s config: %s", name, strings.Join(msgs, "; "))
}

// Config is what Configure receives.
type Config struct {
	// JSON is the decoded config block, with schema defaults applied and
	// credential references resolved by the host.
	JSON json.RawMessage
	// StateDir is the directory the plugin may write to (and nothing else).
	StateDir string
	// Wirings lists the attributes that reference other plugins.
	Wirings []Wiring
}

// Decode unmarshals the config into v.
func (c Config) Decode(v any) error {
	if len(c.JSON) == 0 {
		return nil
	}
	if err := json.Unmarshal(c.JSON, v); err != nil {
		return fmt.Errorf("decode plugin config: %w", err)
	}
	return nil
}

// Wiring is a reference from one of this plugin's attributes to another plugin.
type Wiring struct {
	Attribute string
	Kind      Kind
	Target    string // "plugin.embeddings.local"
}

// Plugin is the required interface every plugin implements. Embed Base for
// defaults and override what you need.
type Plugin interface {
	Info() Info
	// ConfigSchema declares the blueprint config block.
	ConfigSchema() *schema.Schema
	// ValidateConfig checks semantics the schema cannot express (a URL
	// parses, a range is sane). It must not touch the network.
	ValidateConfig(ctx context.Context, config json.RawMessage) []Diagnostic
	// Configure is called once before any kind method, and again on a
	// blueprint change. host reaches wired plugins and host logging.
	Configure(ctx context.Context, config Config, host Host) error
}

// Base gives a plugin an empty schema, no extra validation and a Configure
// that accepts anything. Embed it and override Info.
type Base struct{}

func (Base) ConfigSchema() *schema.Schema                                 { return &schema.Schema{} }
func (Base) ValidateConfig(context.Context, json.RawMessage) []Diagnostic { return nil }
func (Base) Configure(context.Context, Config, Host) error                { return nil }
