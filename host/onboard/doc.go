// Package onboard knows the model providers a new user picks from and turns
// their choices into a starter blueprint, config.yaml defaults, and a check
// that the provider answers. The interactive form and the flags live in
// host/cli; this package holds the catalogue and the generated files.
package onboard
