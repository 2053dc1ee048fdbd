#!/usr/bin/env bash
# Starts the database servers the memory-postgres and retrieval-pgvector
# tests run against, and exports where they are:
#
#   NEMOCLAVE_TEST_POSTGRES_URL  Debian's PostgreSQL 15 (relational and
#                                full-text paths), a throwaway cluster in a
#                                temp dir on a loopback port, run as the
#                                postgres user (not the system service).
#   NEMOCLAVE_TEST_PGVECTOR_URL  PGlite with the pgvector extension
#                                (pgvector is not packaged for this Debian
#                                release), over the Postgres wire protocol.
#
# Source it (`. scripts/test-postgres.sh`) so the variables reach `make
# test`; .ci/run does. Installs what is missing: the postgresql package
# from apt, PGlite from npm into $NEMOCLAVE_PGLITE_DIR (default
# ~/.cache/nemoclave-pglite). The servers stop when the sourcing shell
# exits. Tests skip only when these variables are unset.

nemoclave_pg_main() {
	local pgbin=/usr/lib/postgresql/15/bin
	if [ ! -x "$pgbin/initdb" ]; then
		echo "test-postgres: installing postgresql from apt" >&2
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) || return 1
	fi
	if ! command -v npx >/dev/null; then
		echo "test-postgres: installing nodejs and npm from apt" >&2
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null) || return 1
	fi

	free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

	# PostgreSQL 15 refuses to run as root: the cluster belongs to postgres.
	NEMOCLAVE_PG_DIR=$(mktemp -d /tmp/nemoclave-pg.XXXXXX)
	chown postgres:postgres "$NEMOCLAVE_PG_DIR"
	local pgport
	pgport=$(free_port)
	runuser -u postgres -- "$pgbin/initdb" -D "$NEMOCLAVE_PG_DIR/data" -U postgres --auth=trust -E UTF8 >"$NEMOCLAVE_PG_DIR/initdb.log" 2>&1 ||
		{ cat "$NEMOCLAVE_PG_DIR/initdb.log" >&2; return 1; }
	runuser -u postgres -- "$pgbin/pg_ctl" -D "$NEMOCLAVE_PG_DIR/data" -l "$NEMOCLAVE_PG_DIR/server.log" -w -t 60 \
		-o "-p $pgport -k $NEMOCLAVE_PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null ||
		{ cat "$NEMOCLAVE_PG_DIR/server.log" >&2; return 1; }
	export NEMOCLAVE_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$pgport/postgres?sslmode=disable"

	local dir=${NEMOCLAVE_PGLITE_DIR:-${HOME:-/root}/.cache/nemoclave-pglite}
	mkdir -p "$dir"
	if [ ! -x "$dir/node_modules/.bin/pglite-server" ] || [ ! -d "$dir/node_modules/@electric-sql/pglite-pgvector" ]; then
		echo "test-postgres: installing PGlite into $dir" >&2
		(cd "$dir" && { [ -f package.json ] || npm init -y >/dev/null; } &&
			npm install --no-audit --no-fund --silent @electric-sql/pglite-socket@0.2.17 @electric-sql/pglite@0.5.14 @electric-sql/pglite-pgvector@0.0.15 >/dev/null) || return 1
	fi
	local liteport
	liteport=$(free_port)
	(cd "$dir" && exec node_modules/.bin/pglite-server -p "$liteport" -h 127.0.0.1 -m 16 \
		-e @electric-sql/pglite-pgvector:vector >"$NEMOCLAVE_PG_DIR/pglite.log" 2>&1) &
	NEMOCLAVE_PGLITE_PID=$!
	local i
	# Up to two minutes: PGlite (WebAssembly) starts slowly on a loaded 2-core machine.
	for i in $(seq 1 600); do
		grep -q "listening" "$NEMOCLAVE_PG_DIR/pglite.log" 2>/dev/null && break
		kill -0 "$NEMOCLAVE_PGLITE_PID" 2>/dev/null || { cat "$NEMOCLAVE_PG_DIR/pglite.log" >&2; return 1; }
		sleep 0.2
	done
	grep -q "listening" "$NEMOCLAVE_PG_DIR/pglite.log" || { echo "test-postgres: PGlite did not start" >&2; cat "$NEMOCLAVE_PG_DIR/pglite.log" >&2; return 1; }
	# PGlite runs every connection in one backend session, so named prepared
	# statements from two connections collide: use unnamed ones.
	export NEMOCLAVE_TEST_PGVECTOR_URL="postgres://postgres:postgres@127.0.0.1:$liteport/postgres?sslmode=disable&default_query_exec_mode=exec"
	echo "test-postgres: PostgreSQL 15 on :$pgport, PGlite+pgvector on :$liteport" >&2
}

# nemoclave_pg_stop stops both servers; it runs when the sourcing shell
# exits.
nemoclave_pg_stop() {
	[ -n "${NEMOCLAVE_PGLITE_PID:-}" ] && kill "$NEMOCLAVE_PGLITE_PID" 2>/dev/null
	if [ -n "${NEMOCLAVE_PG_DIR:-}" ] && [ -d "$NEMOCLAVE_PG_DIR/data" ]; then
		runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D "$NEMOCLAVE_PG_DIR/data" -m immediate stop >/dev/null 2>&1
		rm -rf "$NEMOCLAVE_PG_DIR"
	fi
	return 0
}

if nemoclave_pg_main; then
	trap nemoclave_pg_stop EXIT
else
	nemoclave_pg_stop
	echo "test-postgres: could not start the test databases" >&2
	false
fi
