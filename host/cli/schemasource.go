package cli

import (
	"context"

	"github.com/nemoclave/nemoclave/blueprints"
)

// SchemaSourceFactory supplies the SchemaSource that validate and plan
// decode plugin config blocks with. The default is the static fallback
// that knows the builtin plugins' schemas without launching anything. The
// plugin manager replaces it (from an init in its own file) with one that
// launches the blueprint's plugins and asks them; release is called when
// the command is done, to stop whatever was launched.
var SchemaSourceFactory = func(ctx context.Context, g *Globals) (src blueprints.SchemaSource, release func(), err error) {
	return blueprints.BuiltinSchemaSource(), func() {}, nil
}
