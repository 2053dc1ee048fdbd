// Package private makes the daemon's data files readable by their owner
// only. SQLite creates its -wal, -shm and -journal files with the mode of
// the database file, so creating that file 0600 first (and tightening one
// left 0644 by an older version) covers all of them.
package private
