// Package sqlitedb opens the SQLite files of the daemon (state.db with its
// sandboxes, policies, approvals and inference usage) and of the
// first-party SQLite plugins (memory-sqlite, retrieval-sqlite) one way:
//
//   - readable by their owner only: SQLite creates its -wal, -shm and
//     -journal files with the mode of the database file, so creating that
//     file 0600 first (and tightening one left 0644 by an older version)
//     covers all of them;
//   - in WAL mode with synchronous=FULL, so that a commit returns only
//     after the WAL is fsynced and an acknowledged write survives SIGKILL
//     and power loss;
//   - with a busy timeout and IMMEDIATE write transactions, so that two
//     writers wait for each other instead of one failing with
//     SQLITE_BUSY when it upgrades a read lock;
//   - with foreign keys enforced.
package sqlitedb
