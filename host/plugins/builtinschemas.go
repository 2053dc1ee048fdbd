package plugins

import (
	"context"
	"fmt"
	"strings"

	"github.com/nemoclave/nemoclave/sdk/schema"
)

// BuiltinSchemas asks every builtin plugin in the manager's bin directory
// for its config schema, keyed by source (builtin/<kind>-<name>). The
// plugins are the one source of their schemas: `go generate ./blueprints`
// writes this answer into the blueprint language's offline fallback, and
// TestBuiltinSchemasGenerated fails when that copy is stale.
func BuiltinSchemas(ctx context.Context, m *Manager) (map[string]*schema.Schema, error) {
	src := NewSchemaSource(m, nil)
	out := map[string]*schema.Schema{}
	for _, name := range m.builtinNames() {
		kind, _, ok := strings.Cut(name, "-")
		if !ok {
			continue
		}
		s, err := src.ConfigSchema(ctx, kind, BuiltinPrefix+name)
		if err != nil {
			return nil, fmt.Errorf("builtin plugin %s: %w", name, err)
		}
		out[BuiltinPrefix+name] = s
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no builtin plugins in %s: build them first with `make plugins`", m.binDir)
	}
	return out, nil
}
