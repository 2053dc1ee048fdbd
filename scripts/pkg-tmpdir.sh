#!/usr/bin/env bash
# pkg-tmpdir.sh: a `go test -exec` wrapper that runs one package's test binary
# with a temp dir of its own, then names the package in $TMPLEAKS_PER_PACKAGE
# (a file) if it left go-plugin sockets there, and removes the dir. For
# finding which package leaves the /tmp/plugin* socket that
# scripts/tmp-leaks.sh reports (issue #12):
#
#   TMPLEAKS_PER_PACKAGE=/tmp/leaks.txt make test
#
# Processes a test leaves running keep writing to a removed dir; the
# check after the run still looks at the real /tmp for those.
set -uo pipefail
out=${TMPLEAKS_PER_PACKAGE:?set TMPLEAKS_PER_PACKAGE to the file that collects the findings}
dir=$(mktemp -d /tmp/nct.XXXXXX)
TMPDIR=$dir "$@"
rc=$?
left=$(find "$dir" -maxdepth 3 \( -name 'plugin*' -o -name 'nemoclave-plugin*' \) -print 2>/dev/null)
if [ -n "$left" ]; then
	printf '%s: %s\n' "$(pwd -P)" "$(echo $left)" >>"$out"
fi
rm -rf "$dir"
exit $rc
