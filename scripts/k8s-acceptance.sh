#!/usr/bin/env bash
# k8s-acceptance.sh: `nemoclave run` of a blueprint with driver = "kubernetes"
# against the API server of scripts/k8s-testenv.sh (NEMOCLAVE_TEST_KUBECONFIG).
# It applies deploy/base, runs the offline quickstart with its sandbox moved
# to Kubernetes, plays the kubelet (pod status), and checks that the CLI
# reports created, running and exited, and that delete leaves nothing.
# Needs `make build-k8s` (bin/nemoclave-k8s, the build with the kubernetes
# driver, and the builtin plugins).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${NEMOCLAVE_TEST_KUBECONFIG:?run through scripts/k8s-testenv.sh run -- $0}"
K="$NEMOCLAVE_TEST_KUBECONFIG"
NC="${NEMOCLAVE_CLI:-$PWD/bin/nemoclave-k8s}"
[ -x "$NC" ] || { echo "k8s-acceptance: $NC is missing: run make build-k8s" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/nemoclave-k8s-accept.XXXXXX")"
export NEMOCLAVE_HOME="$work/home" NEMOCLAVE_BIN_DIR="$PWD/bin"
export NEMOCLAVE_KUBECONFIG="$K" NEMOCLAVE_K8S_IMAGE=nemoclave:acceptance
export NEMOCLAVE_K8S_GATEWAY_NAMESPACE=nemoclave-system NEMOCLAVE_K8S_FRONT_ADDRESS=127.0.0.1:0
trap '"$NC" daemon stop >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

passed=0 failed=0
check() {
	local what="$1"; shift
	if "$@"; then passed=$((passed + 1)); echo "ok   $what"; else failed=$((failed + 1)); echo "FAIL $what"; fi
}
kc() { kubectl --kubeconfig "$K" "$@"; }
state() { "$NC" sandbox get quickstart -o json | python3 -c 'import json,sys; i=json.load(sys.stdin); print(i.get("state",""), i.get("exit_code") if i.get("state")=="exited" else "-")'; }
eventually() { local want="$1" i; for i in $(seq 1 50); do [ "$(state)" = "$want" ] && return 0; sleep 0.2; done; echo "  state: $(state), want $want" >&2; return 1; }
patch_status() { kc -n nemoclave-sandboxes patch pod nc-quickstart --subresource=status --type=merge -p "$1" >/dev/null; }

kc apply -k deploy/base >/dev/null
kc -n nemoclave-sandboxes get sa default >/dev/null 2>&1 || kc -n nemoclave-sandboxes create sa default >/dev/null

cp -r examples/quickstart "$work/bp"
sed -i 's/driver    = "local"/driver    = "kubernetes"/' "$work/bp/blueprint.hcl"
check "the blueprint asks for the kubernetes driver" grep -q 'driver    = "kubernetes"' "$work/bp/blueprint.hcl"

check "nemoclave run -d starts the sandbox" "$NC" run -d "$work/bp/blueprint.hcl"
check "the sandbox pod exists (admitted under enforced PSA restricted)" kc -n nemoclave-sandboxes get pod nc-quickstart -o name
check "its NetworkPolicy exists" kc -n nemoclave-sandboxes get networkpolicy nc-quickstart -o name
check "the CLI reports it created (pending)" eventually "created -"

now="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
patch_status '{"status":{"phase":"Running","containerStatuses":[{"name":"sandbox","image":"x","imageID":"","ready":true,"restartCount":0,"state":{"running":{"startedAt":"'"$now"'"}}}]}}'
check "the CLI reports it running" eventually "running -"
patch_status '{"status":{"phase":"Failed","containerStatuses":[{"name":"sandbox","image":"x","imageID":"","ready":false,"restartCount":0,"state":{"terminated":{"exitCode":3,"reason":"Error","message":"agent failed","startedAt":"'"$now"'","finishedAt":"'"$now"'"}}}]}}'
check "the CLI reports its exit code" eventually "exited 3"

check "nemoclave sandbox delete" "$NC" sandbox delete quickstart
left="$(kc -n nemoclave-sandboxes get pods,networkpolicies,serviceaccounts,configmaps,persistentvolumeclaims -l app.kubernetes.io/managed-by=nemoclave -o name)"
check "nothing is left in the sandbox namespace" test -z "$left"

echo "k8s-acceptance: $passed passed, $failed failed"
[ "$failed" = 0 ]
