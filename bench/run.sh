#!/usr/bin/env bash
# Runs every benchmark script bench/<area>.sh in turn, saves each one's output
# (with the load average before and after) under bench/out/<area>.txt, then
# bench/summary turns them into bench/out/summary.json — one entry per
# performance target, with peers, ratio, target, met and load — and rewrites
# the generated summary section of BENCHMARKS.md.
#
# QUICK=1 (make bench-quick) runs a short version of every benchmark, side by
# side with the same peers, in under five minutes; its figures are noisier and
# its stores are smaller (the summary records the sizes), so the full run
# (make bench) is the one BENCHMARKS.md's prose quotes.
# Exits non-zero only on failure to measure, never on a missed target.
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/out
mkdir -p "$out"
mode=full
if [ "${QUICK:-0}" = 1 ]; then
	mode=quick
	export NEMOCLAVE_BENCH_ROUNDS=${NEMOCLAVE_BENCH_ROUNDS:-60}
	export ROUNDS=${ROUNDS:-1} DURATION=${DURATION:-2s}
	export EGRESS_HANDSHAKES=${EGRESS_HANDSHAKES:-300} EGRESS_ROUNDS=${EGRESS_ROUNDS:-3} EGRESS_BULK_MIB=${EGRESS_BULK_MIB:-64}
	export RT_CALLS=${RT_CALLS:-500} COLD_STARTS=${COLD_STARTS:-5}
	export NEMOCLAVE_BENCH_VECTORS=${NEMOCLAVE_BENCH_VECTORS:-20000}
	export COLD=${COLD:-2} WARM=${WARM:-4}
fi
status=0
for s in bench/*.sh; do
	area=$(basename "$s" .sh)
	case "$area" in run | fuzz) continue ;; esac
	echo "=== $s ($mode)"
	{
		echo "load-start: $(cat /proc/loadavg)"
		bash "$s" || { echo "bench: $s failed"; status=1; }
		echo "load-end: $(cat /proc/loadavg)"
	} 2>&1 | tee "$out/$area.txt"
	grep -q '^bench: .* failed$' "$out/$area.txt" && status=1
done
perf=()
# The design notes' targets table, when this checkout sits beside them, must
# have a measure for every row.
[ -f ../shared/design/PERFORMANCE.md ] && perf=(-check-targets ../shared/design/PERFORMANCE.md)
echo "=== summary"
${GO:-go} run ./bench/summary -dir "$out" -bin bin/nemoclave -mode "$mode" "${perf[@]}" -update-benchmarks BENCHMARKS.md || status=1
echo "wrote $out/summary.json"
exit $status
