#!/usr/bin/env bash
# Installs the npm packages the plugin tests run as real MCP servers
# (plugins/tools-mcp) into a cache directory outside the repository, so a
# clean clone and CI need nothing but npm. Idempotent: a second run with the
# same versions does nothing. Prints the cache directory on stdout.
#
#   NEMOCLAVE_NPM_CACHE  where to install (default $HOME/.cache/nemoclave/npm)
set -euo pipefail

dir="${NEMOCLAVE_NPM_CACHE:-$HOME/.cache/nemoclave/npm}"
packages=(
	"@modelcontextprotocol/server-filesystem@2026.8.31"
	"@modelcontextprotocol/server-everything@2026.8.31"
)

if ! command -v npm >/dev/null 2>&1; then
	echo "npm-test-deps: npm is not installed; the tools-mcp tests that need real MCP servers will be skipped" >&2
	exit 2
fi
mkdir -p "$dir"
stamp="$dir/.installed"
want="${packages[*]}"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
	echo "$dir"
	exit 0
fi
[[ -f "$dir/package.json" ]] || echo '{"private":true}' >"$dir/package.json"
npm install --prefix "$dir" --no-audit --no-fund --silent "${packages[@]}" >&2
echo "$want" >"$stamp"
echo "$dir"
