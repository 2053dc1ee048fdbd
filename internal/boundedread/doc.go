// Package boundedread reads configuration files (blueprints, templates,
// cassettes) that must be ordinary files of bounded size: a FIFO, a
// device such as /dev/zero, a directory or an oversized file is refused
// with an error that says so, without blocking on it or reading it whole.
package boundedread
