package blueprints

import (
	"context"
	_ "embed"
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

// builtinSchemas is every builtin plugin's answer to ConfigSchema, written
// by asking the built plugins (host/cmd/genschemas); never edit it by
// hand. TestBuiltinSchemasGenerated in host/plugins fails when it is stale.
//
//go:generate go run ../host/cmd/genschemas -bin ../bin -o builtin_schemas.json
//go:embed builtin_schemas.json
var builtinSchemas []byte

// BuiltinSchemaSource returns the static fallback source that knows the
// builtin plugins' config schemas, as the plugins themselves declared them
// when builtin_schemas.json was generated. It checks configs against the
// schema only: the rules a plugin's ValidateConfig adds are the plugin's,
// and are checked whenever the plugin host can ask the built plugin.
func BuiltinSchemaSource() *StaticSchemaSource {
	var m map[string]*schema.Schema
	if err := json.Unmarshal(builtinSchemas, &m); err != nil {
		// The file is generated and embedded: a failure here is a broken
		// build, caught by every test of this package.
		panic(fmt.Sprintf("blueprints: builtin_schemas.json: %v (run go generate ./blueprints)", err))
	}
	return &StaticSchemaSource{Schemas: m}
}

// EncodeSchemas is the canonical form of builtin_schemas.json: indented
// JSON with sorted keys, so regenerating an unchanged set of plugins
// changes nothing.
func EncodeSchemas(m map[string]*schema.Schema) ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// BuiltinSchemasJSON is the embedded builtin_schemas.json, for the test
// that compares it with the plugins.
func BuiltinSchemasJSON() []byte { return append([]byte(nil), builtinSchemas...) }
