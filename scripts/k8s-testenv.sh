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

case "${1:-}" in
build)
	ensure_etcd
	build_apiserver
	;;
*)
	echo "usage: $0 build | run -- CMD..." >&2
	exit 2
	;;
esac
