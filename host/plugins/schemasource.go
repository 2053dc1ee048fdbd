package plugins

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

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
	cache    *SchemaCache
}

// SchemaCache remembers schemas and config verdicts by the plugin binary's
// sha256. Both are functions of the binary and the config alone — a
// plugin's ValidateConfig must not touch the network — so a daemon that
// keeps one cache evaluates a blueprint it has seen without launching a
// single probe. Safe for concurrent use.
type SchemaCache struct {
	mu       sync.Mutex
	schemas  map[string]*schema.Schema
	verdicts map[string][]blueprints.ConfigDiagnostic
}

// NewSchemaCache returns an empty cache.
func NewSchemaCache() *SchemaCache {
	return &SchemaCache{schemas: map[string]*schema.Schema{}, verdicts: map[string][]blueprints.ConfigDiagnostic{}}
}

// WithCache makes s answer from c when it can and fill it when it asks.
func (s *SchemaSource) WithCache(c *SchemaCache) *SchemaSource {
	s.cache = c
	return s
}

// cacheKey identifies a binary (and kind) for the cache; "" disables
// caching for this source.
func (s *SchemaSource) cacheKey(kind, source string) string {
	if s.cache == nil {
		return ""
	}
	b, err := s.m.Resolve(source)
	if err != nil {
		return ""
	}
	return kind + "\x00" + hex.EncodeToString(b.SHA256)
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
	key := s.cacheKey(kind, source)
	if key != "" {
		s.cache.mu.Lock()
		sc, ok := s.cache.schemas[key]
		s.cache.mu.Unlock()
		if ok {
			return sc, nil
		}
	}
	sc, err := s.configSchema(ctx, kind, source)
	if err == nil && key != "" {
		s.cache.mu.Lock()
		s.cache.schemas[key] = sc
		s.cache.mu.Unlock()
	}
	return sc, err
}

func (s *SchemaSource) configSchema(ctx context.Context, kind, source string) (*schema.Schema, error) {
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
	key := s.cacheKey(kind, source)
	if key != "" {
		sum := sha256.Sum256(config)
		key += "\x00" + hex.EncodeToString(sum[:])
		s.cache.mu.Lock()
		v, ok := s.cache.verdicts[key]
		s.cache.mu.Unlock()
		if ok {
			return v, nil
		}
	}
	v, err := s.validateConfig(ctx, kind, source, config)
	if err == nil && key != "" {
		s.cache.mu.Lock()
		s.cache.verdicts[key] = v
		s.cache.mu.Unlock()
	}
	return v, err
}

func (s *SchemaSource) validateConfig(ctx context.Context, kind, source string, config json.RawMessage) ([]blueprints.ConfigDiagnostic, error) {
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

// CheckPlugin implements blueprints.PluginChecker: the plugin must be
// installed (in a version satisfying the constraint), locked in the
// blueprint directory's .nemoclave.lock.hcl and unchanged since.
func (s *SchemaSource) CheckPlugin(_ context.Context, req blueprints.PluginCheck) (*blueprints.PluginPin, error) {
	lock, err := ReadProjectLock(req.Dir)
	if err != nil {
		return nil, err
	}
	c, err := s.m.CheckLocked(lock, req.Dir, req.Source, req.Constraint)
	if err != nil {
		return nil, err
	}
	pin := &blueprints.PluginPin{Source: c.Binary.Source, Hash: c.Binary.Hash, Warning: c.Warning}
	if c.Pin != nil {
		pin.Version, pin.DevOverride = c.Pin.Version, c.Pin.DevOverride
	}
	return pin, nil
}
