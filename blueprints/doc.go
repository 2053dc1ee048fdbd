// Package blueprints is the nemoclave blueprint language: it parses a
// blueprint (one *.hcl / *.hcl.json file or a directory of them), evaluates
// variables and locals, checks every reference statically, decodes plugin
// config blocks against the schema each plugin declares (through a
// SchemaSource the caller supplies), merges policy presets, and produces a
// typed Blueprint plus one effective policy.Policy per sandbox.
//
// Every configuration problem is an hcl.Diagnostic with a source range; the
// CLI renders them with snippets. Policy presets are embedded data files in
// presets/.
//
// This package owns the language and its evaluation. It must not launch
// plugins, resolve credentials from a store, touch sandboxes or the gateway,
// or import anything under host/: the host hands it a SchemaSource and
// consumes the Blueprint.
package blueprints
