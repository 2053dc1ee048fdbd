package cli

import (
	"context"

	"github.com/nemoclave/nemoclave/blueprints"
	"github.com/nemoclave/nemoclave/host/plugins"
)

// Validate and plan ask the blueprint's real plugins for their schemas and
// verdicts, through the plugin manager; release kills what was launched.
func init() {
	SchemaSourceFactory = func(ctx context.Context, g *Globals) (blueprints.SchemaSource, func(), error) {
		m, err := newPluginManager(g)
		if err != nil {
			return nil, nil, err
		}
		return plugins.NewSchemaSource(m, blueprints.BuiltinSchemaSource()), m.Close, nil
	}
}
