#!/usr/bin/env bash
# tmp-leaks.sh: what a test run left in the temp dir.
#
#   scripts/tmp-leaks.sh start FILE   records the moment (FILE is a marker)
#   scripts/tmp-leaks.sh check FILE   reports (fails with TMPLEAKS_STRICT=1) go-plugin sockets, plugin
#                                     socket directories or testupstream
#                                     build directories created since then
#                                     by this user are still there
#
# make test brackets the whole run with it: plugin sockets belong in
# $NEMOCLAVE_HOME/run/ and go away with their plugin, so any left in the
# temp dir is a leak (issue #12). Other new entries of this user are listed
# as a warning: on a machine shared with other runs they may not be ours.
set -euo pipefail
tmp=${TMPDIR:-/tmp}
case "${1:-}" in
start)
	: >"$2"
	;;
check)
	[ -f "$2" ] || { echo "tmp-leaks: no marker $2 (run start first)" >&2; exit 2; }
	leaks=$(find "$tmp" -maxdepth 1 -mindepth 1 -newer "$2" -user "$(id -u)" \
		\( \( -type s -name 'plugin*' \) -o \( -type d \( -name 'plugin-dir*' -o -name 'nemoclave-plugins-*' -o -name 'testupstream-*' \) \) \) -print 2>/dev/null || true)
	others=$(find "$tmp" -maxdepth 1 -mindepth 1 -newer "$2" -user "$(id -u)" ! -type s \
		! -name 'plugin-dir*' ! -name 'nemoclave-plugins-*' ! -name 'testupstream-*' ! -name 'go-build*' ! -path "$2" -print 2>/dev/null || true)
	rm -f "$2"
	if [ -n "$others" ]; then
		echo "tmp-leaks: note: new in $tmp since the tests started (maybe not theirs on a shared machine):" >&2
		echo "$others" | sed 's/^/  /' >&2
	fi
	if [ -n "$leaks" ]; then
		echo "tmp-leaks: the tests left plugin sockets or their own directories in $tmp (plugin sockets belong in \$NEMOCLAVE_HOME/run/ and go with their plugin; a test's files go in t.TempDir()):" >&2
		echo "$leaks" | sed 's/^/  /' >&2
		echo "tmp-leaks: find the creator with TMPDIR=\$(mktemp -d) go test -count=1 <one package> and list what stays there" >&2
		# A full run at times still leaves one socket whose creator is not
		# found yet (issue #12): reported, fatal only with TMPLEAKS_STRICT=1.
		if [ "${TMPLEAKS_STRICT:-0}" = 1 ]; then
			exit 1
		fi
		echo "tmp-leaks: not failing the run (TMPLEAKS_STRICT=1 makes this fatal)" >&2
		exit 0
	fi
	echo "tmp-leaks: no plugin sockets left in $tmp"
	;;
*)
	echo "usage: $0 start|check MARKER" >&2
	exit 2
	;;
esac
