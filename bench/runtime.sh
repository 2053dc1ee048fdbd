#!/usr/bin/env bash
# Runtime benchmarks (PERFORMANCE.md rows "runtime" and "memory use"):
#  - `nemoclave run` of the quickstart, one prompt, replay provider: cold
#    (fresh $NEMOCLAVE_HOME, so the daemon starts too) and warm (daemon up,
#    the previous run's plugin processes kept idle for reuse), and warm with
#    --plugin-idle-ttl 0 (every run launches its plugins);
#  - RSS with 10 idle sandboxes (agents that sleep): the daemon's whole process
#    tree (daemon, plugin processes, sandbox init stages, agents), broken down.
# Prints min / median / p99 in milliseconds. Needs `make build` first.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$PWD/bin
COLD=${COLD:-5}
WARM=${WARM:-10}
work=$(mktemp -d)
trap 'NEMOCLAVE_HOME=$work/home-warm $BIN/nemoclave daemon stop >/dev/null 2>&1 || true; NEMOCLAVE_HOME=$work/home-nottl $BIN/nemoclave daemon stop >/dev/null 2>&1 || true; NEMOCLAVE_HOME=$work/home-idle $BIN/nemoclave daemon stop >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
cp -r examples/quickstart "$work/qs"

ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
stats() { sort -n | awk '{a[NR]=$1} END {p99=int(NR*0.99+0.999); if (p99<1) p99=1; printf "min %d  median %d  p99 %d  (n=%d)\n", a[1], a[int((NR+1)/2)], a[p99], NR}'; }

echo "== nemoclave run (quickstart, replay provider, one prompt)"
: > "$work/cold"
for i in $(seq 1 "$COLD"); do
	home=$work/home-cold-$i
	t=$(date +%s%N)
	NEMOCLAVE_HOME=$home "$BIN/nemoclave" run "$work/qs/blueprint.hcl" >/dev/null 2>&1
	ms "$t" >> "$work/cold"
	NEMOCLAVE_HOME=$home "$BIN/nemoclave" daemon stop >/dev/null 2>&1
done
printf 'cold (daemon start included) ms: '; stats < "$work/cold"

export NEMOCLAVE_HOME=$work/home-warm
"$BIN/nemoclave" run "$work/qs/blueprint.hcl" >/dev/null 2>&1   # start the daemon, warm caches
: > "$work/warm"
for i in $(seq 1 "$WARM"); do
	t=$(date +%s%N)
	"$BIN/nemoclave" run "$work/qs/blueprint.hcl" >/dev/null 2>&1
	ms "$t" >> "$work/warm"
done
printf 'warm daemon ms: '; stats < "$work/warm"
"$BIN/nemoclave" daemon stop >/dev/null

# The same with no idle plugin processes kept between runs (the daemon's
# --plugin-idle-ttl 0): every run launches its plugins, as the first run
# after a minute without one does.
export NEMOCLAVE_HOME=$work/home-nottl
NEMOCLAVE_PLUGIN_IDLE_TTL=0 "$BIN/nemoclave" run "$work/qs/blueprint.hcl" >/dev/null 2>&1
: > "$work/nottl"
for i in $(seq 1 "$WARM"); do
	t=$(date +%s%N)
	"$BIN/nemoclave" run "$work/qs/blueprint.hcl" >/dev/null 2>&1
	ms "$t" >> "$work/nottl"
done
printf 'no idle plugins kept (--plugin-idle-ttl 0), warm daemon ms: '; stats < "$work/nottl"
"$BIN/nemoclave" daemon stop >/dev/null

echo "== daemon RSS with 10 idle sandboxes"
export NEMOCLAVE_HOME=$work/home-idle
for i in $(seq 1 10); do
	d=$work/idle-$i
	cp -r examples/quickstart "$d"
	sed -i "s/sandbox \"quickstart\"/sandbox \"idle$i\"/; s/sandbox.quickstart/sandbox.idle$i/; s/policy \"quickstart\"/policy \"idle$i\"/; s/policy.quickstart/policy.idle$i/" "$d/blueprint.hcl"
	sed -i 's|command = var.prompt == "" ? \["nemoclave", "agent"\] : \["nemoclave", "agent", "-p", var.prompt\]|command = ["/bin/sleep", "600"]|' "$d/blueprint.hcl"
	# One provider for all ten, as a team's sandboxes have: the same model
	# configuration (so the daemon shares that plugin process); each keeps
	# its own workspace (so each has its own files tool).
	sed -i "s|\${path.blueprint}/cassette.json|$PWD/examples/quickstart/cassette.json|" "$d/blueprint.hcl"
	"$BIN/nemoclave" run -d "$d/blueprint.hcl" >/dev/null 2>&1
done
pid=$("$BIN/nemoclave" daemon status -o json | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')
running=$("$BIN/nemoclave" sandbox list -o json | grep -c '"state": "running"' || true)
rss_kib() { awk '/VmRSS/ {print $2}' /proc/"$1"/status 2>/dev/null || echo 0; }
# PSS splits pages shared between processes (the text of ten processes of one
# plugin binary) among them, so a sum of PSS counts each page once.
pss_kib() { awk '/^Pss:/ {print $2}' /proc/"$1"/smaps_rollup 2>/dev/null || echo 0; }
# The daemon's whole process tree: the daemon, its plugin processes, every
# sandbox's init stage and the (sleeping) agents, each counted once.
tree=$pid
frontier=$pid
while [ -n "$frontier" ]; do
	next=""
	for p in $frontier; do
		for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do next="$next $c"; done
	done
	tree="$tree $next"
	frontier=$(echo $next)
done
daemon=0 plugins=0 inits=0 agents=0 pss=0
for p in $tree; do
	r=$(rss_kib "$p")
	pss=$((pss + $(pss_kib "$p")))
	if [ "$p" = "$pid" ]; then daemon=$((daemon + r))
	elif tr '\0' ' ' < /proc/"$p"/cmdline 2>/dev/null | grep -q 'nemoclave-plugin-'; then
		plugins=$((plugins + r))
		# Which plugin binaries dominate: "name rss_kib" per process.
		echo "$(tr '\0' '\n' < /proc/"$p"/cmdline | grep -o 'nemoclave-plugin-[a-z0-9-]*' | head -1) $r" >> "$work/per-plugin"
	elif tr '\0' '\n' < /proc/"$p"/environ 2>/dev/null | grep -qx '_NEMOCLAVE_SANDBOX_INIT=1'; then inits=$((inits + r))
	else agents=$((agents + r)); fi
done
total=$(( (daemon + plugins + inits + agents) / 1024 ))
echo "running sandboxes: $running"
if [ "$running" != 10 ]; then
	# Fewer sandboxes would make the figure look better than it is.
	echo "bench/runtime.sh: $running of 10 sandboxes running; no memory figure" >&2
	exit 1
fi
echo "tree RSS: $total MiB (daemon $((daemon / 1024)), plugins $((plugins / 1024)), sandbox init $((inits / 1024)), agents $((agents / 1024)))"
echo "tree PSS: $((pss / 1024)) MiB (shared pages counted once)"
if [ -f "$work/per-plugin" ]; then
	echo "plugin processes by binary (count, RSS MiB):"
	awk '{n[$1]++; s[$1]+=$2} END {for (k in n) printf "  %-36s %3d  %6.1f\n", k, n[k], s[k]/1024}' "$work/per-plugin" | sort -k3 -rn
fi
echo "target: daemon plus plugin processes <= 200 MiB in all"
