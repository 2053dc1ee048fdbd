#!/usr/bin/env bash
# Installs squid from apt when it is missing, for the TestUpstreamProxy_
# tests: each test starts its own squid (a temp dir, a loopback port) as
# the "corporate" proxy and reads its access log. Run it (or `make
# test-k8s`, which does) before `go test -run TestUpstreamProxy ./host/runtime/`;
# the tests skip with this hint when no squid is installed.
set -euo pipefail
if command -v squid >/dev/null || [ -x /usr/sbin/squid ]; then
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "test-squid: squid is not installed; run as root: apt-get install -y squid" >&2
	exit 1
fi
echo "test-squid: installing squid from apt" >&2
apt-get update -qq
# policy-rc.d keeps the package from starting the system-wide service.
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod +x /usr/sbin/policy-rc.d
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends squid >/dev/null
