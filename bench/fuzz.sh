#!/usr/bin/env bash
# Runs every Go fuzz target in the repository for FUZZTIME (default 30s).
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-30s}
grep -rl --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]+\(' . | while read -r f; do
	dir=$(dirname "$f")
	for target in $(grep -oE '^func Fuzz[A-Za-z0-9_]+' "$f" | sed 's/^func //'); do
		echo "=== $dir $target ($FUZZTIME)"
		(cd "$dir" && go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" .)
	done
done
