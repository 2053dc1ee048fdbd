package blueprints

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/nemoclave/nemoclave/sdk/schema"
)

// SchemaSource is how the evaluator learns what a plugin accepts. The host's
// plugin manager implements it by launching the plugin and asking it (the
// common service's config schema and validate config calls); before that
// exists, and in tests, StaticSchemaSource answers for the builtin plugins.
//
// The evaluator never launches anything itself: it is handed a
// SchemaSource by its caller.
type SchemaSource interface {
	// ConfigSchema returns the schema of the plugin's config block. kind is
	// the plugin block's first label (llm, embeddings, ...); source is its
	// source attribute. An error means the plugin could not be found or
	// asked; it becomes a diagnostic on the source attribute, so say what
	// the user can do ("run nemoclave plugin install ...").
	ConfigSchema(ctx context.Context, kind, source string) (*schema.Schema, error)
	// ValidateConfig lets the plugin judge a decoded config (JSON, as it
	// will receive it in Configure, except that each credential is the
	// string CredentialPlaceholder(NAME), never the value).
	// Returned diagnostics carry attribute paths that the evaluator maps
	// back to source ranges. The error is for failing to ask, not for a bad
	// config.
	ValidateConfig(ctx context.Context, kind, source string, config json.RawMessage) ([]ConfigDiagnostic, error)
}

// ConfigDiagnostic is a plugin's verdict on one part of its config.
type ConfigDiagnostic struct {
	// Severity is hcl.DiagError or hcl.DiagWarning.
	Severity hcl.DiagnosticSeverity `json:"severity"`
	Summary  string                 `json:"summary"`
	Detail   string                 `json:"detail,omitempty"`
	// Path is the attribute path inside the config block: attribute and
	// nested block names, list indexes as decimal strings ("0"), map keys
	// and block labels as they are. Empty means the block as a whole.
	Path []string `json:"path,omitempty"`
}

// StaticSchemaSource is the FALLBACK used when plugins cannot be asked:
// `nemoclave validate` and `plan` before the plugin host exists, tests and
// the fuzzer. It knows a fixed set of schemas by source and validates only
// what the schema says (no plugin-specific rules). When a real plugin host
// is available, prefer it: it asks the plugins themselves.
type StaticSchemaSource struct {
	// Schemas maps a plugin source ("builtin/llm-openai") to its schema.
	Schemas map[string]*schema.Schema
	// Validate, if set, plays the plugin's ValidateConfig in tests.
	Validate func(kind, source string, config json.RawMessage) []ConfigDiagnostic
}

// ErrSchemaUnavailable is returned (wrapped) by a SchemaSource that cannot
// ask a plugin at all, as opposed to a plugin that does not exist. The
// evaluator then warns that the config block was not checked instead of
// failing, so `validate` works on blueprints with third-party plugins
// before the plugin host is available.
var ErrSchemaUnavailable = errors.New("plugin config schema unavailable")

// ConfigSchema implements SchemaSource. Unknown builtin/ sources are
// errors (a typo: every builtin is known); other unknown sources wrap
// ErrSchemaUnavailable.
func (s *StaticSchemaSource) ConfigSchema(_ context.Context, kind, source string) (*schema.Schema, error) {
	sch, ok := s.Schemas[source]
	if ok {
		return sch, nil
	}
	known := make([]string, 0, len(s.Schemas))
	for k := range s.Schemas {
		if strings.HasPrefix(k, "builtin/") {
			known = append(known, k)
		}
	}
	sort.Strings(known)
	if strings.HasPrefix(source, "builtin/") {
		return nil, fmt.Errorf("there is no builtin plugin %q%s; the builtin plugins are %s", source, suggest(source, known), strings.Join(known, ", "))
	}
	return nil, fmt.Errorf("%w: %q is not a builtin plugin and no plugin host is available to ask it (this check uses the static fallback)", ErrSchemaUnavailable, source)
}

// ValidateConfig implements SchemaSource.
func (s *StaticSchemaSource) ValidateConfig(_ context.Context, kind, source string, config json.RawMessage) ([]ConfigDiagnostic, error) {
	if s.Validate == nil {
		return nil, nil
	}
	return s.Validate(kind, source, config), nil
}

// BuiltinSchemaSource returns the static fallback source that knows the
// first-party builtin plugins' config schemas. Keep it in step with
// plugins/*: the real plugins are the authority.
func BuiltinSchemaSource() *StaticSchemaSource {
	str := func(name, desc string) schema.Attribute {
		return schema.Attribute{Name: name, Type: "string", Description: desc}
	}
	embRef := schema.Attribute{Name: "embeddings", PluginKind: "embeddings", Description: "The embeddings plugin that turns text into vectors."}
	return &StaticSchemaSource{Validate: validateBuiltin, Schemas: map[string]*schema.Schema{
		"builtin/embeddings-hash": {Block: schema.Block{
			Description: "Deterministic, offline feature-hashing embeddings.",
			Attributes: []schema.Attribute{
				{Name: "dimensions", Type: "number", Default: json.RawMessage(`256`), Description: "Vector size."},
				{Name: "ngram_min", Type: "number", Default: json.RawMessage(`3`), Description: "Shortest character n-gram hashed."},
				{Name: "ngram_max", Type: "number", Default: json.RawMessage(`5`), Description: "Longest character n-gram hashed."},
				{Name: "lowercase", Type: "bool", Default: json.RawMessage(`true`), Description: "Fold case before hashing."},
			},
		}},
		"builtin/llm-openai": {Block: schema.Block{
			Description: "Any OpenAI-compatible chat completions endpoint (OpenAI, NVIDIA NIM, Ollama, vLLM).",
			Attributes: []schema.Attribute{
				{Name: "base_url", Type: "string", Default: json.RawMessage(`"https://api.openai.com/v1"`), Description: "API base URL."},
				{Name: "api_key", Type: "string", Credential: true, Sensitive: true, Description: "credential(\"NAME\") holding the API key."},
				{Name: "headers", Type: "map(string)", Description: "Extra request headers."},
				{Name: "timeout", Type: "string", Default: json.RawMessage(`"120s"`), Description: "Per-request timeout."},
			},
		}},
		"builtin/llm-anthropic": {Block: schema.Block{
			Description: "The Anthropic Messages API.",
			Attributes: []schema.Attribute{
				{Name: "base_url", Type: "string", Default: json.RawMessage(`"https://api.anthropic.com"`), Description: "API base URL."},
				{Name: "api_key", Type: "string", Credential: true, Sensitive: true, Description: "credential(\"NAME\") holding the API key."},
				{Name: "version", Type: "string", Default: json.RawMessage(`"2023-06-01"`), Description: "anthropic-version header."},
			},
		}},
		"builtin/llm-replay": {Block: schema.Block{
			Description: "Replays recorded model responses from a cassette; records them in record mode.",
			Attributes: []schema.Attribute{
				{Name: "cassette", Type: "string", Required: true, Description: "Path of the cassette file."},
				{Name: "mode", Type: "string", Default: json.RawMessage(`"replay"`), Description: "\"replay\" or \"record\"."},
				{Name: "upstream", PluginKind: "llm", Description: "The llm plugin recorded from in record mode."},
			},
		}},
		"builtin/memory-sqlite": {Block: schema.Block{
			Description: "Agent memory in SQLite with vector recall.",
			Attributes:  []schema.Attribute{str("path", "Database file; empty means the run's state directory."), embRef},
		}},
		"builtin/retrieval-sqlite": {Block: schema.Block{
			Description: "Document retrieval in SQLite with vector search.",
			Attributes:  []schema.Attribute{str("path", "Database file; empty means the run's state directory."), embRef},
		}},
		"builtin/tools-files": {Block: schema.Block{
			Description: "File tools (read, write, list, search) confined to a root.",
			Attributes:  []schema.Attribute{{Name: "root", Type: "string", Default: json.RawMessage(`"/workspace"`), Description: "Directory the tools may touch."}},
		}},
		"builtin/tools-http": {Block: schema.Block{
			Description: "HTTP fetch tool; requests leave through the egress policy.",
			Attributes:  []schema.Attribute{{Name: "max_bytes", Type: "number", Default: json.RawMessage(`1048576`), Description: "Largest response body returned."}},
		}},
		"builtin/dataproc-docs": {Block: schema.Block{
			Description: "Document extraction, chunking and conversion.",
		}},
	}}
}

// validateBuiltin plays the builtin plugins' own ValidateConfig for the
// rules a schema cannot express.
func validateBuiltin(kind, source string, config json.RawMessage) []ConfigDiagnostic {
	var c map[string]any
	if err := json.Unmarshal(config, &c); err != nil {
		return nil
	}
	var out []ConfigDiagnostic
	switch source {
	case "builtin/llm-replay":
		mode, _ := c["mode"].(string)
		if mode != "replay" && mode != "record" {
			out = append(out, ConfigDiagnostic{Severity: hcl.DiagError, Summary: "Invalid replay mode", Detail: fmt.Sprintf("mode = %q: use \"replay\" (answer from the cassette) or \"record\" (call upstream and write the cassette).", mode), Path: []string{"mode"}})
		}
		if mode == "record" && c["upstream"] == nil {
			out = append(out, ConfigDiagnostic{Severity: hcl.DiagError, Summary: "Record mode needs an upstream", Detail: "Set upstream = plugin.llm.<name>: the model whose answers are recorded.", Path: []string{"mode"}})
		}
	case "builtin/embeddings-hash":
		dims, _ := c["dimensions"].(float64)
		if dims < 8 || dims > 8192 || dims != float64(int(dims)) {
			out = append(out, ConfigDiagnostic{Severity: hcl.DiagError, Summary: "Invalid dimensions", Detail: "dimensions must be a whole number between 8 and 8192.", Path: []string{"dimensions"}})
		}
		lo, _ := c["ngram_min"].(float64)
		hi, _ := c["ngram_max"].(float64)
		if lo < 1 || hi < lo {
			out = append(out, ConfigDiagnostic{Severity: hcl.DiagError, Summary: "Invalid n-gram range", Detail: "Need 1 <= ngram_min <= ngram_max.", Path: []string{"ngram_min"}})
		}
	}
	return out
}
