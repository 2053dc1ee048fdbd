package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/nemoclave/nemoclave/blueprints"
	"github.com/nemoclave/nemoclave/host/plugins"
	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/schema"
)

// Validate and plan ask the blueprint's real plugins for their schemas and
// verdicts, through the plugin manager; release kills what was launched.
func init() {
	SchemaSourceFactory = func(ctx context.Context, g *Globals) (blueprints.SchemaSource, func(), error) {
		m, err := newPluginManager(g)
		if err != nil {
			return nil, nil, err
		}
		return &pluginSchemaSource{m: m, fallback: blueprints.BuiltinSchemaSource()}, m.Close, nil
	}
}

// pluginSchemaSource implements blueprints.SchemaSource by launching each
// plugin once (shared per source) and asking it. A builtin whose binary is
// not built falls back to the static schema, so validate still works from a
// partial build; the plugin's own checks are skipped then.
type pluginSchemaSource struct {
	m        *plugins.Manager
	fallback *blueprints.StaticSchemaSource
}

func (s *pluginSchemaSource) client(ctx context.Context, kind, source string) (*plugin.Launched, error) {
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

func (s *pluginSchemaSource) useFallback(source string, err error) bool {
	if !errors.Is(err, plugins.ErrNotFound) {
		return false
	}
	_, ok := s.fallback.Schemas[source]
	return ok
}

// ConfigSchema implements blueprints.SchemaSource.
func (s *pluginSchemaSource) ConfigSchema(ctx context.Context, kind, source string) (*schema.Schema, error) {
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
func (s *pluginSchemaSource) ValidateConfig(ctx context.Context, kind, source string, config json.RawMessage) ([]blueprints.ConfigDiagnostic, error) {
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
