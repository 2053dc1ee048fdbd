// Package termquiet keeps the nemoclave binary from querying the terminal
// while its packages initialise.
//
// Bubble Tea v1 (through `nemoclave term` and the onboard wizard) asks the
// terminal for its background colour in a package init: it writes OSC 11
// and a cursor-position request to stdout and then reads stdin for up to
// five seconds, discarding everything that is not the answer. Every
// nemoclave process on a terminal paid that, whatever the command: typed
// or piped input that was already waiting (`printf … | script -c
// 'nemoclave run …'`) was eaten, and an agent started on a sandbox
// terminal (`nemoclave agent`, which no one answers) stalled five seconds
// and ate the operator's first line.
//
// termquiet's init runs before Bubble Tea's (Go initialises a ready package
// in import-path order, and this one needs only os, which is ready long
// before termenv and lipgloss are), and sets CI, which makes termenv treat
// the output as no terminal and skip the query. Restore, first thing in
// main, puts the environment back, so nothing else and no child process
// sees the change. The background then counts as dark (termenv's answer
// when it does not ask); colour support is detected again in Restore.
// TestNoTerminalQueryAtStart guards the order.
package termquiet
