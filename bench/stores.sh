#!/usr/bin/env bash
# Retrieval and memory store benchmarks (BENCHMARKS.md, "Retrieval and
# memory"). Each benchmark builds its data set, measures a fixed number of
# queries itself and reports p50/p99 (ms) and recall@10:
#
#   BenchmarkStoresRetrievalExact  top-10 through retrieval-sqlite's exact
#                                  scan, alternated query by query with the
#                                  baseline (brute force in a plain Go loop)
#   BenchmarkStoresRetrievalHNSW   the same through its HNSW graph, recall
#                                  against the exact scan, build time
#   BenchmarkStoresMemoryRecall    memory-sqlite hybrid recall over 10k
#                                  memories embedded by embeddings-hash
#
# NEMOCLAVE_BENCH_VECTORS overrides the 100k retrieval size for a quick run.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)  machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "vectors: ${NEMOCLAVE_BENCH_VECTORS:-100000}"
go test -run '^$' -bench 'BenchmarkStores' -benchtime=1x -timeout 30m \
	./plugins/retrieval-sqlite ./plugins/memory-sqlite | grep -E '^(Benchmark|ok|FAIL)'
