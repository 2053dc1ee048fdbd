// Package state is the daemon's durable record in $NEMOCLAVE_HOME/state.db
// (SQLite, WAL, synchronous commits): the sandboxes it created and from
// which blueprint, every policy revision each sandbox ran under, and every
// operator answer to an egress approval.
//
// It owns the schema and its queries. It must not decide anything: the
// runtime writes what happened and reads it back after a restart, so
// `sandbox list` stays truthful.
package state
