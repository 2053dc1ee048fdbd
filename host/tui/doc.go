// Package tui is `nemoclave term`: a terminal dashboard of sandboxes, the
// selected sandbox's live logs, pending egress approvals (answered from the
// keyboard) and inference status.
//
// It owns presentation only; every fact comes from the daemon through the
// Source interface, and every action goes back through it.
package tui
