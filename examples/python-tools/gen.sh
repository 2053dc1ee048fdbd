#!/bin/sh
# Regenerates nemoclave_plugin/pb from the SDK's protos (../../sdk/proto)
# and go-plugin's and gRPC's (./proto), with protoc from apt
# (protobuf-compiler). Usage: ./gen.sh [output dir]; the test in
# host/plugins runs it into a temporary directory and compares.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/nemoclave_plugin/pb}
command -v protoc >/dev/null || { echo "gen.sh: protoc not found; apt-get install -y protobuf-compiler" >&2; exit 1; }
rm -rf "$out"
mkdir -p "$out"
cd "$here/../../sdk/proto"
protoc -I . --python_out="$out" $(find nemoclave -name '*.proto' | LC_ALL=C sort)
cd "$here/proto"
protoc -I . --python_out="$out" $(find . -name '*.proto' | sed 's|^\./||' | LC_ALL=C sort)
