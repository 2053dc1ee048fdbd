#!/usr/bin/env bash
# Side-by-side benchmarks of two CLI paths, old algorithm against new in one
# alternating loop (Go benchmarks; see each one's doc comment):
#  - `logs --source plugin --tail 50` on an 8 MiB plugin log: reading the
#    whole file against reading backwards from its end
#    (host/runtime BenchmarkPluginLogTail);
#  - a blueprint with a chain of 2,048 locals: every local evaluated against
#    all locals (before the R6 fix) against only the locals it names
#    (blueprints BenchmarkChainedLocals).
# ROUNDS_TAIL / ROUNDS_LOCALS set the iterations (QUICK=1 halves them).
set -euo pipefail
cd "$(dirname "$0")/.."
tail=${ROUNDS_TAIL:-40}
locals=${ROUNDS_LOCALS:-6}
if [ "${QUICK:-0}" = 1 ]; then tail=$((tail / 2)) locals=$((locals / 2)); fi
echo "== logs --tail: whole-file read vs backwards read (${tail} rounds each, alternating)"
${GO:-go} test -run '^$' -bench '^BenchmarkPluginLogTail$' -benchtime "${tail}x" ./host/runtime | grep '^Benchmark'
echo "== chained locals: all-locals vs named-locals evaluation (${locals} rounds each, alternating)"
${GO:-go} test -run '^$' -bench '^BenchmarkChainedLocals$' -benchtime "${locals}x" ./blueprints | grep '^Benchmark'
