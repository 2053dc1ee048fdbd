package cli

import (
	"context"

	"github.com/nemoclave/nemoclave/blueprints"
	"github.com/nemoclave/nemoclave/host/plugins"
)

// schemaSource is the SchemaSource that validate and plan decode plugin
// config blocks with: it asks the blueprint's real plugins for their
// schemas and verdicts through the plugin manager, and falls back to the
// builtin plugins' schemas. release kills what was launched; call it when
// the command is done.
func schemaSource(_ context.Context, g *Globals) (src blueprints.SchemaSource, release func(), err error) {
	m, err := newPluginManager(g)
	if err != nil {
		return nil, nil, err
	}
	return plugins.NewSchemaSource(m, blueprints.BuiltinSchemaSource()), m.Close, nil
}
