// Package sdktest is the conformance suite for nemoclave plugins. A plugin
// runs it from its own tests, one function per kind it serves:
//
//	func TestConformance(t *testing.T) {
//		p := &myplugin.Plugin{}
//		sdktest.Common(t, p)
//		sdktest.Tools(t, p, sdktest.WithToolSample("wordcount", `{"text":"a b"}`))
//	}
//
// Every suite starts the plugin with plugin.InProcess — real gRPC, the
// same adapters the host uses — configures it (WithConfig, schema
// defaults, a fresh StateDir from t.TempDir, wired plugins from
// WithWiring) and checks the kind's contract as documented on its
// interface: what the host and agents rely on, not how a plugin gets
// there. Options supply the inputs only the author knows (sample tool
// arguments, documents, the model to use).
//
// RunBinary runs the same suites against a built plugin binary in any
// language, launched through go-plugin as the host does (binary.go); the
// suites then see only what crosses the wire.
//
// The package owns the contract checks. It must not reach into
// sdk/plugin's internals: it sees a plugin exactly as the host does.
package sdktest
