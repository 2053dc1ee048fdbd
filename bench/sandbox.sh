#!/usr/bin/env bash
# Sandbox benchmarks (BENCHMARKS.md, "Sandbox"):
#   1. create → exec → exit of /bin/true in a local-driver sandbox with every
#      protection on, alternating in one loop with plain fork+exec and with
#      bubblewrap using equivalent namespaces and mounts;
#   2. 50 sandboxes started concurrently (time to ready, p99), then a check
#      that no process, mount, cgroup or state directory leaked.
# The measurement lives in sandbox/local/bench_test.go (TestSandboxBench),
# with the daemon's real init stage (nemoclave-sandbox-init). Exits non-zero only
# when it cannot measure. NEMOCLAVE_BENCH_INIT_B=<init binary> adds a fourth
# variant in the same loop (say, the init stage built from an earlier commit).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v bwrap >/dev/null 2>&1; then
	echo "bench/sandbox.sh: installing bubblewrap for the baseline"
	if [ "$(id -u)" = 0 ]; then
		apt-get install -y bubblewrap >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y bubblewrap >/dev/null; }
	else
		sudo apt-get install -y bubblewrap >/dev/null
	fi
fi

echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "kernel:  $(uname -r)"
echo "cpus:    $(nproc)"
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg)"
echo "user:    $(id -un) (root mode: no user namespace, cgroup limits applied)"
echo "bwrap:   $(bwrap --version 2>/dev/null || echo missing)"

# The init stage the daemon really uses (nemoclave-sandbox-init), built here as make build builds it (static, CGO_ENABLED=0).
mkdir -p bench/out
CGO_ENABLED=0 ${GO:-go} build -trimpath -ldflags='-s -w' -o bench/out/nemoclave-sandbox-init ./sandbox/local/cmd/nemoclave-sandbox-init
NEMOCLAVE_BENCH_INIT=$PWD/bench/out/nemoclave-sandbox-init NEMOCLAVE_BENCH_SANDBOX=1 NEMOCLAVE_BENCH_ROUNDS="${NEMOCLAVE_BENCH_ROUNDS:-300}" \
	${GO:-go} test -count=1 -run '^TestSandboxBench$' -v ./sandbox/local/ 2>&1 |
	grep -v -e '^=== ' -e '^--- ' -e '^PASS$' -e '^ok ' || {
	echo "bench/sandbox.sh: measurement failed" >&2
	exit 1
}
