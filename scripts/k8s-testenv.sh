#!/usr/bin/env bash
# k8s-testenv.sh: a real Kubernetes API server on loopback for the tests of
# sandbox/kubernetes, host/credentials (Kubernetes Secret backend) and the
# manifests in deploy/.
#
#   scripts/k8s-testenv.sh build            build kube-apiserver once and cache it
#   scripts/k8s-testenv.sh run -- CMD...    start etcd + kube-apiserver, run CMD
#                                           with NEMOCLAVE_TEST_KUBECONFIG set,
#                                           stop both afterwards
#
# etcd comes from Debian (etcd-server, 3.4). kube-apiserver is built from the Go
# module k8s.io/kubernetes in a throwaway module that replaces each staging
# module k8s.io/<name> with its published v0.<minor>.<patch>. The binary is cached
# at $NEMOCLAVE_K8S_CACHE (default $HOME/.cache/nemoclave/k8s) so later runs on
# the same machine (including CI) reuse it; the first build takes 10+ minutes
# on 2 cores.
set -euo pipefail

K8S_VERSION="${NEMOCLAVE_K8S_VERSION:-v1.37.2}"
STAGING_VERSION="v0.${K8S_VERSION#v1.}"
CACHE="${NEMOCLAVE_K8S_CACHE:-$HOME/.cache/nemoclave/k8s}"
APISERVER="$CACHE/kube-apiserver-$K8S_VERSION"

log() { printf 'k8s-testenv: %s\n' "$*" >&2; }

ensure_etcd() {
	if command -v etcd >/dev/null 2>&1; then return; fi
	log "installing etcd-server from apt"
	if [ "$(id -u)" != 0 ]; then
		log "etcd is missing and this is not root: run 'sudo apt-get install etcd-server'"
		exit 1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q etcd-server >/dev/null 2>&1 || {
		apt-get update -q >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q etcd-server >/dev/null
	}
	# Debian starts the packaged service; the tests run their own etcd.
	if command -v systemctl >/dev/null 2>&1; then systemctl disable --now etcd >/dev/null 2>&1 || true; fi
}

build_apiserver() {
	if [ -x "$APISERVER" ]; then return; fi
	mkdir -p "$CACHE"
	local mod
	mod="$(mktemp -d "${TMPDIR:-/tmp}/nemoclave-kube-apiserver.XXXXXX")"
	log "building kube-apiserver $K8S_VERSION in $mod (10+ minutes the first time; cached at $APISERVER)"
	(
		cd "$mod"
		export GOWORK=off GOFLAGS=-mod=mod
		go mod init nemoclave.local/kube-apiserver >/dev/null 2>&1
		go mod download -json "k8s.io/kubernetes@$K8S_VERSION" >download.json
		local gomod
		gomod="$(sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p' download.json)"
		# Every "k8s.io/x => ./staging/src/k8s.io/x" of the kubernetes go.mod
		# becomes "k8s.io/x => k8s.io/x v0.N.P".
		{
			echo "require k8s.io/kubernetes $K8S_VERSION"
			echo "replace ("
			sed -n 's#^[[:space:]]*\(k8s\.io/[^ ]*\) => \./staging/src/.*#\t\1 => \1 '"$STAGING_VERSION"'#p' "$gomod"
			echo ")"
		} >>go.mod
		cat >main.go <<'GO'
package main

import _ "k8s.io/kubernetes/cmd/kube-apiserver/app"

func main() {}
GO
		go mod tidy >/dev/null
		rm -f main.go
		nice -n 10 go build -trimpath -ldflags='-s -w' -o "$APISERVER.tmp" k8s.io/kubernetes/cmd/kube-apiserver
		mv "$APISERVER.tmp" "$APISERVER"
	)
	rm -rf "$mod"
	log "built $APISERVER"
}


free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# start DIR: etcd and kube-apiserver on loopback, state and logs in DIR,
# kubeconfig at DIR/kubeconfig (token auth, cluster admin).
start() {
	local dir="$1"
	mkdir -p "$dir"
	local etcd_port peer_port api_port token
	etcd_port="$(free_port)"; peer_port="$(free_port)"; api_port="$(free_port)"
	token="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
	echo "$token,nemoclave-test-admin,nemoclave-test-admin,system:masters" >"$dir/tokens.csv"
	openssl genrsa -out "$dir/sa.key" 2048 2>/dev/null
	openssl rsa -in "$dir/sa.key" -pubout -out "$dir/sa.pub" 2>/dev/null
	nice -n 5 etcd --name nemoclave-test --data-dir "$dir/etcd" \
		--listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
		--listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
		--initial-cluster "nemoclave-test=http://127.0.0.1:$peer_port" \
		>"$dir/etcd.log" 2>&1 &
	echo $! >"$dir/etcd.pid"
	"$APISERVER" \
		--etcd-servers "http://127.0.0.1:$etcd_port" \
		--bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
		--cert-dir "$dir/certs" \
		--token-auth-file "$dir/tokens.csv" \
		--service-account-issuer https://kubernetes.default.svc.cluster.local \
		--service-account-key-file "$dir/sa.pub" \
		--service-account-signing-key-file "$dir/sa.key" \
		--authorization-mode RBAC \
		--enable-admission-plugins NamespaceLifecycle,LimitRanger,ServiceAccount,PodSecurity,ResourceQuota,DefaultStorageClass,NodeRestriction \
		--service-cluster-ip-range 10.96.0.0/16 \
		--allow-privileged=false \
		--profiling=false \
		--endpoint-reconciler-type none \
		>"$dir/kube-apiserver.log" 2>&1 &
	echo $! >"$dir/kube-apiserver.pid"
	cat >"$dir/kubeconfig" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: https://127.0.0.1:$api_port
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    token: $token
contexts:
- name: test
  context: {cluster: test, user: admin}
current-context: test
KUBECONFIG
	local i
	for i in $(seq 1 120); do
		if curl -fsk -H "Authorization: Bearer $token" "https://127.0.0.1:$api_port/readyz" >/dev/null 2>&1; then
			log "kube-apiserver ready on 127.0.0.1:$api_port (logs in $dir)"
			return 0
		fi
		if ! kill -0 "$(cat "$dir/kube-apiserver.pid")" 2>/dev/null; then
			log "kube-apiserver exited; last lines of $dir/kube-apiserver.log:"
			tail -20 "$dir/kube-apiserver.log" >&2
			return 1
		fi
		sleep 1
	done
	log "kube-apiserver did not become ready in 120s; see $dir/kube-apiserver.log"
	return 1
}

stop() {
	local dir="$1" f
	for f in kube-apiserver etcd; do
		if [ -f "$dir/$f.pid" ]; then
			local pid i
			pid="$(cat "$dir/$f.pid")"
			kill "$pid" 2>/dev/null || true
			# Not our child in "stop" mode: poll until it has shut down.
			for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
			kill -9 "$pid" 2>/dev/null || true
			wait "$pid" 2>/dev/null || true
			rm -f "$dir/$f.pid"
		fi
	done
}

case "${1:-}" in
build)
	ensure_etcd
	build_apiserver
	;;
start)
	# start DIR: leave etcd and kube-apiserver running (stop DIR ends them).
	ensure_etcd
	build_apiserver
	start "${2:?usage: $0 start DIR}"
	echo "export NEMOCLAVE_TEST_KUBECONFIG=$2/kubeconfig"
	;;
stop)
	stop "${2:?usage: $0 stop DIR}"
	;;
run)
	shift
	[ "${1:-}" = "--" ] && shift
	[ $# -gt 0 ] || { echo "usage: $0 run -- CMD..." >&2; exit 2; }
	ensure_etcd
	build_apiserver
	dir="$(mktemp -d "${TMPDIR:-/tmp}/nemoclave-k8s.XXXXXX")"
	trap 'stop "$dir"; rm -rf "$dir"' EXIT
	start "$dir"
	NEMOCLAVE_TEST_KUBECONFIG="$dir/kubeconfig" "$@"
	;;
*)
	echo "usage: $0 build | run -- CMD... | start DIR | stop DIR" >&2
	exit 2
	;;
esac
