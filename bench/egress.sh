#!/usr/bin/env bash
# Egress gateway benchmark (PERFORMANCE.md "egress proxy"): CONNECT setup
# latency and tunnel throughput, beside a direct connection and beside squid
# with an equivalent allow-list ACL. squid runs from a config in a temp dir
# on loopback, never as the system service. Prints the tables recorded in
# BENCHMARKS.md; exits non-zero only when it cannot measure.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v squid >/dev/null && [ ! -x /usr/sbin/squid ]; then
	echo "egress bench: installing squid (Debian package) for the baseline"
	if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq squid >/dev/null; }; then
		echo "egress bench: squid could not be installed; measuring without the squid column"
	fi
	# The package starts the system service; the benchmark runs its own.
	systemctl stop squid 2>/dev/null || service squid stop 2>/dev/null || true
fi
SQUID=$(command -v squid || { [ -x /usr/sbin/squid ] && echo /usr/sbin/squid; } || true)
BIN=$(mktemp -d)
trap 'rm -rf "$BIN"' EXIT
go build -o "$BIN/egressbench" ./bench/egress
echo "egress bench: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, kernel $(uname -r), $(go version | cut -d' ' -f3)"
"$BIN/egressbench" -squid "${SQUID}" \
	-handshakes "${EGRESS_HANDSHAKES:-1500}" -rounds "${EGRESS_ROUNDS:-12}" -bulk-mib "${EGRESS_BULK_MIB:-256}"
