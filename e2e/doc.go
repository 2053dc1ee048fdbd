// Package e2e holds end-to-end tests: they build (or take from
// $NEMOCLAVE_BIN_DIR) the real nemoclave binary and plugins, run blueprints
// with `nemoclave run` against a real daemon, real plugins, the real gateway
// and real sandboxes, and check what an operator would check.
package e2e
