// Package schema is how a plugin declares the shape of its blueprint
// `config {}` block: attributes with HCL type constraints, nested blocks,
// required/optional, defaults, descriptions and sensitivity.
//
// The host converts a Schema into an hcldec.Spec (Spec) to decode the block
// before handing the result to the plugin, so authors never parse HCL. This
// package owns the declaration and its conversion; it must not evaluate
// blueprints or talk to plugins.
package schema
