// Package cli holds the nemoclave command tree (cobra). Each command group
// lives in its own file and registers itself with Register; the root command
// owns global flags (-o, --home) and output formatting.
//
// It must not hold business logic: commands parse flags, call the packages
// that own the work (blueprints, host runtime, plugin manager) and render.
package cli
