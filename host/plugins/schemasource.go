package plugins

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/nemoclave/nemoclave/blueprints"
	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/schema"
)

// SchemaSource implements blueprints.SchemaSource by launching each
// plugin once (shared per source, killed by Manager.Close) and asking it.
// With a fallback, a builtin whose binary is not built answers from the
// static schemas, so validate works from a partial build (the plugin's own
// checks are skipped then); without one, such a plugin is an error, as a
// run needs the real plugin anyway.
type SchemaSource struct {
	m        *Manager
	fallback *blueprints.StaticSchemaSource
}

// NewSchemaSource returns the schema source backed by m's plugins;
// fallback may be nil.
func NewSchemaSource(m *Manager, fallback *blueprints.StaticSchemaSource) *SchemaSource {
	return &SchemaSource{m: m, fallback: fallback}
}

func (s *SchemaSource) client(ctx context.Context, kind, source string) (*plugin.Launched, error) {
	l, b, err := s.m.Client(ctx, source)
	if err != nil {
		return nil, err
	}
	info, err := l.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("plugin %s: %w", source, err)
	}
	if !slices.Contains(info.Kinds, plugin.Kind(kind)) {
		kinds := make([]string, len(info.Kinds))
		for i, k := range info.Kinds {
			kinds[i] = string(k)
		}
		return nil, fmt.Errorf("plugin %s (%s) serves %s, not %s: change the block's kind label or its source", source, b.Path, strings.Join(kinds, ", "), kind)
	}
	return l, nil
}

func (s *SchemaSource) useFallback(source string, err error) bool {
	if s.fallback == nil || !errors.Is(err, ErrNotFound) {
		return false
	}
	_, ok := s.fallback.Schemas[source]
	return ok
}

// ConfigSchema implements blueprints.SchemaSource.
func (s *SchemaSource) ConfigSchema(ctx context.Context, kind, source string) (*schema.Schema, error) {
	l, err := s.client(ctx, kind, source)
	if err != nil {
		if s.useFallback(source, err) {
			return s.fallback.ConfigSchema(ctx, kind, source)
		}
		return nil, err
	}
	return l.Schema(ctx)
}

// ValidateConfig implements blueprints.SchemaSource.
func (s *SchemaSource) ValidateConfig(ctx context.Context, kind, source string, config json.RawMessage) ([]blueprints.ConfigDiagnostic, error) {
	l, err := s.client(ctx, kind, source)
	if err != nil {
		if s.useFallback(source, err) {
			return s.fallback.ValidateConfig(ctx, kind, source, config)
		}
		return nil, err
	}
	diags, err := l.ValidateConfig(ctx, config)
	if err != nil {
		return nil, fmt.Errorf("plugin %s: validate config: %w", source, err)
	}
	out := make([]blueprints.ConfigDiagnostic, len(diags))
	for i, d := range diags {
		sev := hcl.DiagError
		if d.Severity == plugin.SeverityWarning {
			sev = hcl.DiagWarning
		}
		out[i] = blueprints.ConfigDiagnostic{Severity: sev, Summary: d.Summary, Detail: d.Detail, Path: d.Path}
	}
	return out, nil
}
