#!/usr/bin/env bash
# Runs every benchmark script bench/<area>.sh in turn. Each prints its table
# (the figures recorded in BENCHMARKS.md) and exits non-zero only on failure
# to measure, never on a missed target.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
for s in bench/*.sh; do
	case "$(basename "$s")" in run.sh|fuzz.sh) continue ;; esac
	echo "=== $s"
	bash "$s" || { echo "bench: $s failed"; status=1; }
done
exit $status
