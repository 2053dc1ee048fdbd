package blueprints_test

import (
	"context"
	"fmt"
	"os"

	"github.com/nemoclave/nemoclave/blueprints"
)

// Load a blueprint, report its diagnostics with source snippets, and read
// the effective policy of each sandbox.
func ExampleLoader_Load() {
	l := blueprints.NewLoader(blueprints.Options{
		// The offline fallback; the host passes a source that asks the
		// plugins themselves.
		Schemas: blueprints.BuiltinSchemaSource(),
	})
	bp, diags := l.Load(context.Background(), "../examples/quickstart/blueprint.hcl")
	if diags.HasErrors() {
		_ = blueprints.WriteDiagnostics(os.Stderr, l.Files(), diags, 100)
		return
	}
	for _, s := range bp.Sandboxes {
		fmt.Println(s.Name, s.Policy.UnknownHosts, s.Policy.Hosts())
	}
	for _, p := range bp.Plugins {
		fmt.Println(p.Address, p.Source, len(p.Wiring))
	}
	// Output:
	// quickstart deny [files.pythonhosted.org pypi.org]
	// plugin.llm.replay builtin/llm-replay 0
	// plugin.embeddings.local builtin/embeddings-hash 0
	// plugin.memory.default builtin/memory-sqlite 1
	// plugin.tools.files builtin/tools-files 0
}
