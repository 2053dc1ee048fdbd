#!/usr/bin/env bash
# Plugin host benchmarks (issue 2 §5): a 1 KB unary round trip host → plugin
# → host beside the same code called in process, and plugin cold start
# (launch with checksum verification, handshake, configure; alternating the
# hash found by file identity with a full sha256 per launch). Targets:
# round trip p50 ≤ 150 µs, cold start p50 ≤ 100 ms.
#
# Each benchmark records every call and reports min, p50 and p99 per round;
# the summary takes, over ROUNDS rounds, the lowest min and the median of
# the rounds' p50 and p99. Raw `go test -bench` output is printed first.
#
#   ROUNDS=5 RT_CALLS=2000 COLD_STARTS=20 bench/plugins.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
RT_CALLS=${RT_CALLS:-2000}
COLD_STARTS=${COLD_STARTS:-20}
GO=${GO:-go}

raw=$(mktemp)
trap 'rm -f "$raw"' EXIT

echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(uname -sr), $($GO version | cut -d' ' -f3), ROUNDS=$ROUNDS RT_CALLS=$RT_CALLS COLD_STARTS=$COLD_STARTS"
$GO test -run '^$' -bench 'BenchmarkEmbedRoundTrip' -benchmem -benchtime "${RT_CALLS}x" -count "$ROUNDS" ./host/plugins 2>/dev/null | tee -a "$raw" | grep -E '^(Benchmark|ok|FAIL)'
$GO test -run '^$' -bench 'BenchmarkColdStart' -benchmem -benchtime "${COLD_STARTS}x" -count "$ROUNDS" ./host/plugins 2>/dev/null | tee -a "$raw" | grep -E '^(Benchmark|ok|FAIL)'
# Pre-launch verification alone: by file identity (unchanged file) against
# the full sha256 every launch did before.
$GO test -run '^$' -bench 'BenchmarkVerify' -benchtime 50x -count "$ROUNDS" ./host/plugins 2>/dev/null | grep -E '^(Benchmark|ok|FAIL)'
# The plugin hop (issue 20): AutoMTLS and one gRPC message per stream chunk
# (before) against SO_PEERCRED (peercred) and waiting chunks merged (after),
# alternating in one loop; after1p is after with the plugin at GOMAXPROCS=1.
hop=$(mktemp)
trap 'rm -f "$raw" "$hop"' EXIT
$GO test -run '^$' -bench 'BenchmarkPluginHop' -benchtime "${RT_CALLS}x" -count "$ROUNDS" ./host/plugins 2>/dev/null | tee "$hop" | grep -E '^(Benchmark|ok|FAIL)'
grep -q '^Benchmark' "$raw" || { echo "bench/plugins.sh: no benchmark ran" >&2; exit 1; }

echo
awk '
function fmt(ns) {
	if (ns >= 1e6) return sprintf("%.1f ms", ns / 1e6)
	return sprintf("%.1f µs", ns / 1e3)
}
function median(key,   n, i, j, a, t) {
	n = cnt[key]
	for (i = 1; i <= n; i++) a[i] = val[key, i]
	for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function add(key, v) { cnt[key]++; val[key, cnt[key]] = v }
/^Benchmark/ {
	name = $1; sub(/^Benchmark/, "", name); sub(/-[0-9]+$/, "", name)
	for (i = 3; i < NF; i += 2) {
		unit = $(i + 1); v = $i
		if (unit ~ /^(inproc|plugin|identity|rehash)-/) {
			row = name "/" substr(unit, 1, index(unit, "-") - 1); unit = substr(unit, index(unit, "-") + 1)
		} else row = name
		if (!(row in seen)) { seen[row] = 1; order[++rows] = row }
		if (unit == "min-ns") { if (!(row in mn) || v < mn[row]) mn[row] = v }
		else if (unit == "p50-ns" || unit == "p99-ns" || unit == "B/op" || unit == "allocs/op") add(row SUBSEP unit, v)
	}
}
END {
	printf "%-44s %12s %12s %12s %10s %10s\n", "benchmark", "min", "p50", "p99", "B/op", "allocs/op"
	for (r = 1; r <= rows; r++) {
		row = order[r]
		if (!(row in mn)) continue # alternating: only its prefixed rows are per call
		b = (row SUBSEP "B/op") in cnt ? sprintf("%d", median(row SUBSEP "B/op")) : "-"
		al = (row SUBSEP "allocs/op") in cnt ? sprintf("%d", median(row SUBSEP "allocs/op")) : "-"
		printf "%-44s %12s %12s %12s %10s %10s\n", row, fmt(mn[row]), fmt(median(row SUBSEP "p50-ns")), fmt(median(row SUBSEP "p99-ns")), b, al
	}
	a = "EmbedRoundTripAlternating/plugin"; z = "EmbedRoundTripAlternating/inproc"
	if ((a SUBSEP "p50-ns") in cnt && (z SUBSEP "p50-ns") in cnt)
		printf "\nround trip, plugin vs in process (alternating): p50 %s vs %s (+%s, %.0fx); target p50 <= 150 µs\n", fmt(median(a SUBSEP "p50-ns")), fmt(median(z SUBSEP "p50-ns")), fmt(median(a SUBSEP "p50-ns") - median(z SUBSEP "p50-ns")), median(a SUBSEP "p50-ns") / median(z SUBSEP "p50-ns")
	a = "ColdStartAlternating/identity"; z = "ColdStartAlternating/rehash"
	if ((a SUBSEP "p50-ns") in cnt && (z SUBSEP "p50-ns") in cnt)
		printf "cold start, hash by file identity vs sha256 every launch (alternating): p50 %s vs %s\n", fmt(median(a SUBSEP "p50-ns")), fmt(median(z SUBSEP "p50-ns"))
}' "$raw"

echo
# Per variant: lowest min, lowest/median/highest p50 and median p99 over the
# rounds, median CPU per call of the plugin process and of the host, and
# gRPC messages per 50-event stream.
awk '
function median(key,   n, i, j, a, t) {
	n = cnt[key]
	for (i = 1; i <= n; i++) a[i] = val[key, i]
	for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function add(key, v) { cnt[key]++; val[key, cnt[key]] = v; if (!(key in mn) || v < mn[key]) mn[key] = v; if (!(key in mx) || v > mx[key]) mx[key] = v }
function us(key) { return (key in cnt) ? sprintf("%.1f", median(key) / 1e3) : "-" }
/^BenchmarkPluginHop/ {
	name = $1; sub(/^Benchmark/, "", name); sub(/-[0-9]+$/, "", name)
	for (i = 3; i < NF; i += 2) {
		unit = $(i + 1)
		if (unit !~ /^(before|peercred|after|after1p)-/) continue
		row = name "/" substr(unit, 1, index(unit, "-") - 1)
		if (!(row in seen)) { seen[row] = 1; order[++rows] = row }
		add(row SUBSEP substr(unit, index(unit, "-") + 1), $i)
	}
}
END {
	printf "%-28s %9s %9s %9s %9s %9s %11s %9s %6s\n", "plugin hop (µs)", "min", "p50 min", "p50 med", "p50 max", "p99 med", "plugin CPU", "host CPU", "msgs"
	for (r = 1; r <= rows; r++) {
		k = order[r]
		printf "%-28s %9.1f %9.1f %9s %9.1f %9s %11s %9s %6s\n", k, mn[k SUBSEP "min-ns"] / 1e3, mn[k SUBSEP "p50-ns"] / 1e3, us(k SUBSEP "p50-ns"), mx[k SUBSEP "p50-ns"] / 1e3, us(k SUBSEP "p99-ns"), us(k SUBSEP "plugin-cpu-ns"), us(k SUBSEP "host-cpu-ns"), (k SUBSEP "msgs") in cnt ? sprintf("%.2f", median(k SUBSEP "msgs")) : "-"
	}
}' "$hop"
